"""The private engine and scratch folder one benchmark run shares, and their clean-up.

Everything lives under one short /tmp/hwprov-b.* folder (containerd's socket paths must fit
in 104 bytes): the engine's data-root, compose files, boards, device nodes. Leaving the
context, normally or by Ctrl-C, removes every container, stops dockerd and its containerd,
deletes its network namespace and the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
from hwprov.sandbox.dockerd import PrivateEngine
from hwprov.sandbox.images import ensure_busybox, ensure_hostpython
from hwprov.sim.realnodes import host_char_majors

REPO = Path(__file__).resolve().parent.parent  # `python -m bench.*` children run from here


@dataclass
class Lab:
    root: Path
    engine: PrivateEngine
    client: docker.DockerClient
    profile_dir: Path | None = None  # --profile: hwprov and the scale probe under cProfile

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    @property
    def url(self) -> str:
        return self.engine.base_url

    def folder(self, name: str) -> Path:
        path = self.root / "w" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def profile(self, name: str) -> Path | None:
        """Where to write cProfile stats for `name`, when profiling was asked for."""
        if self.profile_dir is None:
            return None
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        return self.profile_dir.resolve() / f"{name}.prof"

    def device_node(self, name: str, minor: int = 0) -> Path:
        """A real character node with a major no driver here has: a container maps it, and
        opening it gives ENXIO, so it can never be a real device of this host."""
        path = self.folder("nodes") / name
        if not path.exists():
            os.mknod(path, stat.S_IFCHR | 0o660, os.makedev(free_major(), minor))
        return path

    def remove_containers(self) -> None:
        for c in self.api.containers(all=True):
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_container(c["Id"], force=True)


def free_major() -> int:
    taken = host_char_majors(Path("/proc/devices").read_text())
    return next(m for m in range(511, 300, -1) if m not in taken)


@contextlib.contextmanager
def open_lab(profile_dir: Path | None = None) -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="hwprov-b.", dir="/tmp"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        engine = PrivateEngine(root / "e")
        cleanup.callback(engine.stop)  # registered first: a failed start still cleans up
        engine.start()
        client = engine.client()
        cleanup.callback(client.close)
        ensure_busybox(client)
        ensure_hostpython(client)
        yield Lab(root, engine, client, profile_dir)
