"""The image's build context, as the Docker CLI really sends it: .dockerignore keeps the
caches, virtualenvs and .git out, and everything deploy/Dockerfile copies in (the image itself
cannot be built here: no registry for its base, tests/unit/test_deploy.py)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hwprov.sandbox.dockerd import PrivateEngine

ROOT = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker")
TAG = "hwprov-test/build-context:latest"


@pytest.mark.skipif(DOCKER is None, reason="needs the docker CLI (Debian's docker.io)")
def test_the_context_has_what_the_image_copies_and_no_caches(
    engine: PrivateEngine, tmp_path: Path
) -> None:
    assert DOCKER is not None
    # FROM scratch needs no registry; the Dockerfile outside the context is the CLI's to add.
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\nCOPY . /ctx/\n")
    env = {**os.environ, "DOCKER_HOST": engine.base_url, "DOCKER_BUILDKIT": "0"}

    def docker(*args: str, out: type[bytes] | type[str] = str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [DOCKER, *args], env=env, capture_output=True, text=out is str, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done

    docker("build", "-q", "-f", str(dockerfile), "-t", TAG, str(ROOT))
    try:
        docker("create", "--name", "hwprov-context", TAG, "none")
        exported = docker("export", "hwprov-context", out=bytes).stdout
    finally:
        subprocess.run([DOCKER, "rm", "-f", "hwprov-context"], env=env, capture_output=True)
        subprocess.run([DOCKER, "rmi", "-f", TAG], env=env, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        names = {n.removeprefix("ctx/") for n in tar.getnames() if n.startswith("ctx/")}
    for copied in ("pyproject.toml", "README.md", "LICENSE", "deploy/no-release.yml"):
        assert copied in names, copied
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "agent").rglob("*.py")}
    assert sources and sources <= names
    assert {str(p.relative_to(ROOT)) for p in (ROOT / "hw-fixtures").glob("*.yaml")} <= names
    # present in this checkout (the test venv, bytecode), absent from the context
    assert (ROOT / ".venv").is_dir() and any((ROOT / "agent").rglob("__pycache__"))
    parts = {part for n in names for part in Path(n).parts}
    for cache in (".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"):
        assert cache not in parts, cache
    assert not [n for n in names if n.endswith(".pyc") or ".egg-info" in n]
