"""Containers: the engine edge, reconciling a plan into containers, live grants."""
