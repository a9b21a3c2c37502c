"""The quick start works as written: docs/quickstart.sh runs, and the page shows its commands."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_command_on_the_page_is_in_the_script() -> None:
    script = (DOCS / "quickstart.sh").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", (DOCS / "quickstart.md").read_text(), re.S)
    commands = [line.strip() for b in blocks for line in b.splitlines() if line.strip()]
    commands = [c for c in commands if not c.startswith(("git clone", "bash docs/quickstart"))]
    assert len(commands) >= 8
    for command in commands:
        assert command in script, f"quickstart.md shows a command the script lacks: {command}"


@pytest.mark.timeout(300)
def test_the_quick_start_gets_a_plugged_adapter_into_a_container() -> None:
    done = subprocess.run(
        ["bash", str(DOCS / "quickstart.sh")], capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stderr[-3000:]
    node = next(line for line in done.stdout.splitlines() if line.endswith("/dev/gps"))
    assert node.startswith("crw-rw----")  # a character device, mapped rw
    assert "privileged: false" in done.stdout
    assert "recreated service=gps" in done.stderr
