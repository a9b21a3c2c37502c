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
# What a working checkout holds that no image needs (paths relative to the checkout).
JUNK = (
    ".venv/bin/python",
    ".git",
    "agent/hwprov/__pycache__/loop.cpython-311.pyc",
    "agent/hwprov/daemon/stray.pyc",
    ".mypy_cache/3.11/x.json",
    ".ruff_cache/x",
    ".pytest_cache/v/x",
    ".hypothesis/examples/x",
    ".test-results/junit.xml",
    "hwprov.egg-info/PKG-INFO",
    "build/lib/x.py",
    "dist/hwprov-0.1.0.whl",
    "bench/results/x.json",
)


@pytest.mark.skipif(DOCKER is None, reason="needs the docker CLI (Debian's docker.io)")
def test_the_context_has_what_the_image_copies_and_no_caches(
    engine: PrivateEngine, tmp_path: Path
) -> None:
    assert DOCKER is not None
    # The checkout's files with what a working checkout also holds planted beside them (this
    # one may have no bytecode, say), and once more nested, as in a release that vendors it.
    context = tmp_path / "context"
    for name in (".dockerignore", "pyproject.toml", "README.md", "LICENSE"):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, context / name)
    for folder in ("agent", "plugins", "hw-fixtures", "deploy"):
        shutil.copytree(ROOT / folder, context / folder)
    (context / "vendored" / "hwprov").mkdir(parents=True)
    shutil.copy(ROOT / "README.md", context / "vendored" / "hwprov" / "README.md")
    for junk in JUNK:
        for where in (context, context / "vendored" / "hwprov"):
            (where / junk).parent.mkdir(parents=True, exist_ok=True)
            (where / junk).write_text("not for the image")
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

    docker("build", "-q", "-f", str(dockerfile), "-t", TAG, str(context))
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
    assert "vendored/hwprov/README.md" in names  # a vendored copy's own files are kept
    for junk in JUNK:
        for where in ("", "vendored/hwprov/"):
            assert where + junk not in names, where + junk
