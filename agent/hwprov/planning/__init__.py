"""Compose services to requirements to a plan, pure: what each container must be given, and why."""
