"""Offline test images: no registry is reachable, so images are imported from local files."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import docker

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
BUSYBOX_TAG = "hwprov/busybox:latest"
HOSTPYTHON_TAG = "hwprov/hostpython:latest"
# The host-python image is a shell of symlinks into /usr, which is bind-mounted read-only.
HOSTPYTHON_VOLUMES = {"/usr": {"bind": "/usr", "mode": "ro"}}
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
GROUP = b"root:x:0:\ndialout:x:20:\nnogroup:x:65534:\n"


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def _add_link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _exists(client: docker.DockerClient, tag: str) -> str | None:
    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


def _import(client: docker.DockerClient, data: bytes, tag: str, changes: list[str]) -> str:
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(data, repository=repository, tag=version, changes=changes)
    return client.images.get(tag).id


def ensure_busybox(client: docker.DockerClient, tag: str = BUSYBOX_TAG) -> str:
    if (found := _exists(client, tag)) is not None:
        return found
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "dev", "proc", "sys", "tmp", "etc", "root"):
            _add_dir(tar, d)
        _add_file(tar, "bin/busybox", BUSYBOX.read_bytes(), 0o755)
        for applet in applets.stdout.split():
            if applet != "busybox":
                _add_link(tar, f"bin/{applet}", "busybox")
        _add_file(tar, "etc/passwd", PASSWD)
        _add_file(tar, "etc/group", GROUP)
    return _import(client, buf.getvalue(), tag, ['CMD ["/bin/sh"]', "ENV PATH=/bin"])


def ensure_hostpython(client: docker.DockerClient, tag: str = HOSTPYTHON_TAG) -> str:
    """Python with termios at no build cost: run with HOSTPYTHON_VOLUMES."""
    if (found := _exists(client, tag)) is not None:
        return found
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("usr", "dev", "proc", "sys", "tmp", "etc", "root", "sbin"):
            # /sbin must be a real directory: docker-init is bind-mounted at /sbin/docker-init.
            _add_dir(tar, d)
        for link in ("bin", "lib", "lib64"):
            _add_link(tar, link, f"usr/{link}")
        _add_file(tar, "etc/passwd", PASSWD)
        _add_file(tar, "etc/group", GROUP)
    return _import(
        client, buf.getvalue(), tag, ['CMD ["/usr/bin/python3"]', "ENV PATH=/usr/bin:/bin"]
    )
