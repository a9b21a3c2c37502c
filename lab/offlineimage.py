"""deploy/Dockerfile built with no registry and no package index, as docs/deploy.md tells users
to: a base made from Debian's packages (scripts/base-image.sh), imported into an engine, and
hwprov installed from a folder of wheels, the build's network off. tests/engine/test_image.py
drives it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import docker

from lab.wheelvenv import ROOT, source_tree


def base_tarball() -> Path:
    """The base's root filesystem as a tarball: built once (about 25 s), then kept."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/base-image.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/base-image.sh failed:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip())


def import_base(client: docker.DockerClient, tarball: Path) -> str:
    """The tarball as an image named after it (so a rebuilt base is a new name); imported only
    when the engine does not have it yet."""
    tag = f"hwprov/base:{tarball.stem}"
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=version)
    return tag


def wheels(out: Path, hwprov_wheel: Path) -> Path:
    """hwprov's wheel and a wheel of each of its dependencies in `out`, through pip and this
    machine's pip configuration (an sdist-only dependency, as sdnotify is, is built here)."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(hwprov_wheel, out)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
         "-w", str(out), str(out / hwprov_wheel.name)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return out


def context(dest: Path, wheel_folder: Path) -> Path:
    """A build context as a release's checkout has it: the sources, deploy/, and the wheels
    at deploy/wheels, the Dockerfile's default WHEELS."""
    source_tree(dest)
    shutil.copytree(ROOT / "deploy", dest / "deploy", ignore=shutil.ignore_patterns("*.whl"))
    shutil.copytree(wheel_folder, dest / "deploy/wheels", dirs_exist_ok=True)
    return dest


def build(client: docker.DockerClient, ctx: Path, base: str, tag: str) -> list[str]:
    """deploy/Dockerfile built in `ctx` on `base` with no network: the build's output lines.
    RuntimeError with the output when it fails."""
    said: list[str] = []
    for chunk in client.api.build(
        path=str(ctx),
        dockerfile="deploy/Dockerfile",
        tag=tag,
        buildargs={"BASE": base},
        network_mode="none",
        rm=True,
        forcerm=True,
        decode=True,
    ):
        if "stream" in chunk:
            said.extend(chunk["stream"].splitlines())
        if "error" in chunk:
            tail = "\n".join(said[-30:])
            raise RuntimeError(f"the image did not build: {chunk['error']}\n{tail}")
    return said
