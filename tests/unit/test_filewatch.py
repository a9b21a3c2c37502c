"""The compose-file watch: an edit in place, a rename over it, and a symlink on the way swapped
the way Kubernetes updates a mounted ConfigMap."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hwprov.daemon.filewatch import FileWatch, chain


class Changes:
    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def after(self, action: Callable[[], object], timeout: float = 5.0) -> bool:
        """Whether a change is reported after `action` (and the reports of what came before
        it are all in: one write is several events, maybe read in two batches)."""
        with self._cond:
            seen = -1
            while seen != self.count:  # until 0.2 s pass without a report
                seen = self.count
                self._cond.wait_for(lambda seen=seen: self.count > seen, 0.2)
        action()
        with self._cond:
            return self._cond.wait_for(lambda: self.count > seen, timeout)


@pytest.fixture
def watched() -> Iterator[Callable[[Path], Changes]]:
    watches: list[FileWatch] = []

    def watch(path: Path) -> Changes:
        changes = Changes()
        watches.append(FileWatch(path, changes))
        watches[-1].start()
        return changes

    yield watch
    for w in watches:
        w.stop()


def configmap(folder: Path, text: str) -> Path:
    """A ConfigMap volume as the kubelet lays it out: the file a link into `..data`, itself a
    link to a timestamped folder."""
    stamp = folder / "..2026_12_03_10_00_00.000000001"
    stamp.mkdir()
    (stamp / "docker-compose.yml").write_text(text)
    (folder / "..data").symlink_to(stamp.name)
    (folder / "docker-compose.yml").symlink_to("..data/docker-compose.yml")
    return folder / "docker-compose.yml"


def kubelet_update(folder: Path, text: str, n: int, remove_old: bool = True) -> None:
    """The kubelet's atomic update: a new timestamped folder, a `..data_tmp` link to it renamed
    over `..data`, then the old folder removed."""
    old = (folder / "..data").resolve()
    stamp = folder / f"..2026_12_03_10_0{n}_00.000000001"
    stamp.mkdir()
    (stamp / "docker-compose.yml").write_text(text)
    (folder / "..data_tmp").symlink_to(stamp.name)
    os.rename(folder / "..data_tmp", folder / "..data")
    if remove_old:
        shutil.rmtree(old)


def test_a_configmap_update_is_a_change_every_time(
    watched: Callable[[Path], Changes], tmp_path: Path
) -> None:
    compose = configmap(tmp_path, "services: {}\n")
    changes = watched(compose)
    for n in (1, 2, 3):
        text = f"services: {{a{n}: {{image: x}}}}\n"
        assert changes.after(functools.partial(kubelet_update, tmp_path, text, n)), n
        assert compose.read_text() == text


def test_a_swap_that_leaves_the_old_folder_is_seen_and_so_is_an_edit_after_it(
    watched: Callable[[Path], Changes], tmp_path: Path
) -> None:
    compose = configmap(tmp_path, "services: {}\n")
    changes = watched(compose)
    assert changes.after(lambda: kubelet_update(tmp_path, "services: {b: {}}\n", 1, False))
    # The file the chain leads to now is watched, the one it left is not.
    assert changes.after(lambda: compose.write_text("services: {c: {}}\n"))
    old = tmp_path / "..2026_12_03_10_00_00.000000001" / "docker-compose.yml"
    assert not changes.after(lambda: old.write_text("stale"), timeout=0.5)


def test_an_edit_and_a_rename_over_a_plain_file_are_changes(
    watched: Callable[[Path], Changes], tmp_path: Path
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services: {}\n")
    changes = watched(compose)
    assert changes.after(lambda: compose.write_text("services: {a: {}}\n"))
    new = tmp_path / ".docker-compose.yml.swp"
    new.write_text("services: {b: {}}\n")
    assert changes.after(lambda: new.rename(compose))
    assert not changes.after(lambda: (tmp_path / "other.yml").write_text("x"), timeout=0.5)


def test_the_chain_names_every_link_on_the_way_and_the_file(tmp_path: Path) -> None:
    compose = configmap(tmp_path, "services: {}\n")
    stamp = tmp_path / "..2026_12_03_10_00_00.000000001"
    assert chain(compose) == [
        (tmp_path, "docker-compose.yml"),
        (tmp_path, "..data"),
        (stamp, "docker-compose.yml"),
    ]
    # A linked folder with a ".." after it: taken from where the link led, as the kernel does.
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "via").symlink_to(tmp_path / "deep" / "er")
    assert chain(tmp_path / "via" / ".." / "x.yml") == [
        (tmp_path, "via"),
        (tmp_path / "deep", "x.yml"),
    ]
