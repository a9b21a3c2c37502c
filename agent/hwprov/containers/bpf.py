"""bpf(2) for cgroup v2 device programs, through ctypes: load, query, dump, swap, and the map.

The policy is containers/devicefilter.py's; this module only talks to the kernel.

`allow` puts hwprov's grant check in front of every program on a cgroup that does not have
it yet (once per container start), then writes the grant into the map; `deny` deletes it
from the map. Never fail open: every step that can fail runs before the step that widens
access, and a failed swap leaves the old program attached.

* Swap with BPF_F_REPLACE (kernel 5.6+): one attach that replaces one program in place.
* Without it: attach the new program next to the old (BPF_F_ALLOW_MULTI), then detach the old.
  While both are attached the kernel ANDs their verdicts, so the window can only deny
  (the new one allows no more than the old one plus the map, which has no new entry yet).
* A cgroup whose programs were attached without BPF_F_ALLOW_MULTI holds one: attaching with
  the same flags replaces it in place.

Attachments belong to the cgroup, not to this process: the programs (and the map they hold)
stay when hwprov exits and go with the cgroup. No pinning needed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import resource
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hwprov.containers import devicefilter as df
from hwprov.errors import HwprovError

# bpf(2) commands and constants (include/uapi/linux/bpf.h)
MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, MAP_GET_NEXT_KEY = 0, 1, 2, 3, 4
PROG_LOAD, PROG_ATTACH, PROG_DETACH = 5, 8, 9
PROG_GET_FD_BY_ID, MAP_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, PROG_QUERY = 13, 14, 15, 16
PROG_TYPE_CGROUP_DEVICE = 15
CGROUP_DEVICE = 6  # attach type
MAP_TYPE_HASH = 1
# Elements freed after an RCU grace period: a lookup in flight never reads an element that a
# revoke freed and the next grant reused (container-hotplug sets it for the same reason).
F_NO_PREALLOC = 1
F_ALLOW_OVERRIDE, F_ALLOW_MULTI, F_REPLACE = 1, 2, 4
LICENSE = b"Apache-2.0"  # hwprov's; the kernel only asks for GPL to use GPL-only helpers
MAX_PROGS = 64  # the kernel's limit of programs per cgroup and attach type


def syscall_number(machine: str, pointer_bits: int) -> int | None:
    """bpf(2)'s number for this process: a 32-bit userland on a 64-bit kernel (Raspberry Pi OS)
    reports the kernel's machine but makes 32-bit syscalls."""
    if machine in ("x86_64", "amd64", "i386", "i686"):
        return 321 if pointer_bits == 64 else 357
    if machine in ("aarch64", "arm64") or machine.startswith("arm"):
        return 280 if pointer_bits == 64 else 386
    return {"riscv64": 280, "ppc64le": 361, "ppc64": 361, "s390x": 351}.get(machine)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class BpfError(HwprovError):
    """A bpf(2) call failed; `errno` says how."""

    def __init__(self, message: str, err: int = 0) -> None:
        self.errno = err
        super().__init__(message)


def bpf(cmd: int, attr: bytearray, what: str) -> int:
    number = syscall_number(platform.machine(), ctypes.sizeof(ctypes.c_void_p) * 8)
    if number is None:
        raise BpfError(f"bpf(2): no syscall number known for {platform.machine()}", errno.ENOSYS)
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    got = int(_libc.syscall(ctypes.c_long(number), ctypes.c_long(cmd), buf, len(attr)))
    if got < 0:
        err = ctypes.get_errno()
        raise BpfError(f"bpf({what}): {os.strerror(err)}", err)
    return got


def _address(buf: ctypes.Array[ctypes.c_char]) -> int:
    return ctypes.addressof(buf)


# -- programs and maps ------------------------------------------------------------------------


def load(insns: tuple[df.Insn, ...], name: str = df.PROG_NAME) -> int:
    """A CGROUP_DEVICE program's fd; on refusal the error ends with the verifier's words."""
    code = df.encode(insns)
    text = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(LICENSE)
    log = ctypes.create_string_buffer(1 << 16)

    def attempt(log_level: int) -> int:
        attr = bytearray(128)
        struct.pack_into(
            "=IIQQIIQ", attr, 0, PROG_TYPE_CGROUP_DEVICE, len(insns), _address(text),
            _address(lic), log_level, len(log) if log_level else 0,
            _address(log) if log_level else 0,
        )  # fmt: skip
        attr[48 : 48 + 16] = name.encode()[:15].ljust(16, b"\0")
        struct.pack_into("=I", attr, 68, CGROUP_DEVICE)  # expected_attach_type
        return bpf(PROG_LOAD, attr, "BPF_PROG_LOAD")

    try:
        # without a log first: a long program's log can fill the buffer, and then older
        # kernels refuse the load itself (ENOSPC)
        return attempt(0)
    except BpfError:
        pass
    try:
        return attempt(1)
    except BpfError as err:
        said = log.value.decode(errors="replace").strip().splitlines()[-3:]
        detail = f" (verifier: {' / '.join(said)})" if said else ""
        raise BpfError(f"{err}{detail}", err.errno) from None


def create_map() -> int:
    attr = bytearray(72)
    struct.pack_into(
        "=IIIII", attr, 0, MAP_TYPE_HASH, df.KEY_SIZE, df.VALUE_SIZE, df.MAP_ENTRIES,
        F_NO_PREALLOC,
    )  # fmt: skip
    attr[28 : 28 + 16] = df.MAP_NAME.encode().ljust(16, b"\0")
    return bpf(MAP_CREATE, attr, "BPF_MAP_CREATE")


def prog_fd(prog_id: int) -> int:
    attr = bytearray(12)
    struct.pack_into("=I", attr, 0, prog_id)
    return bpf(PROG_GET_FD_BY_ID, attr, f"BPF_PROG_GET_FD_BY_ID {prog_id}")


def map_fd(map_id: int) -> int:
    attr = bytearray(12)
    struct.pack_into("=I", attr, 0, map_id)
    return bpf(MAP_GET_FD_BY_ID, attr, f"BPF_MAP_GET_FD_BY_ID {map_id}")


def _info(fd: int, info: bytearray, what: str) -> None:
    buf = (ctypes.c_char * len(info)).from_buffer(info)
    attr = bytearray(16)
    struct.pack_into("=IIQ", attr, 0, fd, len(info), _address(buf))
    bpf(OBJ_GET_INFO_BY_FD, attr, what)


@dataclass(frozen=True, slots=True)
class ProgInfo:
    id: int
    name: str
    map_ids: tuple[int, ...]
    xlated: bytes | None  # None: the kernel would not dump it (kptr_restrict, CAP_SYSLOG)


# struct bpf_prog_info offsets: id 4, xlated_prog_len 20, xlated_prog_insns 32,
# nr_map_ids 52, map_ids 56, name 64
def prog_info(fd: int, dump: bool) -> ProgInfo:
    first = bytearray(96)
    _info(fd, first, "BPF_OBJ_GET_INFO_BY_FD")
    (xlated_len,) = struct.unpack_from("=I", first, 20)
    (nr_maps,) = struct.unpack_from("=I", first, 52)
    insns = ctypes.create_string_buffer(max(xlated_len, 8) if dump else 8)
    ids = (ctypes.c_uint32 * max(nr_maps, 1))()
    info = bytearray(96)
    if dump:
        struct.pack_into("=I", info, 20, xlated_len)
        struct.pack_into("=Q", info, 32, _address(insns))
    struct.pack_into("=I", info, 52, nr_maps)
    struct.pack_into("=Q", info, 56, ctypes.addressof(ids))
    _info(fd, info, "BPF_OBJ_GET_INFO_BY_FD")
    (prog_id,) = struct.unpack_from("=I", info, 4)
    (got_len,) = struct.unpack_from("=I", info, 20)
    (got_ptr,) = struct.unpack_from("=Q", info, 32)
    name = bytes(info[64:80]).split(b"\0")[0].decode(errors="replace")
    xlated = insns.raw[: min(got_len, xlated_len)] if dump and got_ptr and got_len else None
    return ProgInfo(prog_id, name, tuple(ids[: min(nr_maps, len(ids))]), xlated)


def map_shape(fd: int) -> tuple[str, int, int]:
    """name, key size, value size (struct bpf_map_info: key 8, value 12, name 24)."""
    info = bytearray(88)
    _info(fd, info, "BPF_OBJ_GET_INFO_BY_FD (map)")
    key_size, value_size = struct.unpack_from("=II", info, 8)
    return bytes(info[24:40]).split(b"\0")[0].decode(errors="replace"), key_size, value_size


def map_update(fd: int, key: bytes, value: bytes) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    attr = bytearray(32)
    struct.pack_into("=IIQQQ", attr, 0, fd, 0, _address(k), _address(v), 0)  # BPF_ANY
    bpf(MAP_UPDATE_ELEM, attr, "BPF_MAP_UPDATE_ELEM")


def map_delete(fd: int, key: bytes) -> bool:
    k = ctypes.create_string_buffer(key, len(key))
    attr = bytearray(16)
    struct.pack_into("=IIQ", attr, 0, fd, 0, _address(k))
    try:
        bpf(MAP_DELETE_ELEM, attr, "BPF_MAP_DELETE_ELEM")
    except BpfError as err:
        if err.errno == errno.ENOENT:
            return False
        raise
    return True


def map_items(fd: int) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    key: bytes | None = None
    for _ in range(df.MAP_ENTRIES + 1):
        nxt = ctypes.create_string_buffer(df.KEY_SIZE)
        cur = ctypes.create_string_buffer(key or b"\0" * df.KEY_SIZE, df.KEY_SIZE)
        attr = bytearray(24)
        struct.pack_into("=IIQQ", attr, 0, fd, 0, _address(cur) if key else 0, _address(nxt))
        try:
            bpf(MAP_GET_NEXT_KEY, attr, "BPF_MAP_GET_NEXT_KEY")
        except BpfError as err:
            if err.errno == errno.ENOENT:
                return found
            raise
        key = nxt.raw
        value = ctypes.create_string_buffer(df.VALUE_SIZE)
        look = bytearray(24)
        struct.pack_into("=IIQQ", look, 0, fd, 0, _address(nxt), _address(value))
        try:
            bpf(MAP_LOOKUP_ELEM, look, "BPF_MAP_LOOKUP_ELEM")
        except BpfError as err:
            if err.errno != errno.ENOENT:  # deleted since: not a grant any more
                raise
            continue
        found[key] = value.raw
    return found


# -- attachments ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attached:
    flags: int
    ids: tuple[int, ...]


def query(cgroup_fd: int) -> Attached:
    """The device programs attached to this cgroup itself (not those it inherits)."""
    ids = (ctypes.c_uint32 * MAX_PROGS)()
    attr = bytearray(32)
    struct.pack_into("=IIII", attr, 0, cgroup_fd, CGROUP_DEVICE, 0, 0)
    struct.pack_into("=QI", attr, 16, ctypes.addressof(ids), MAX_PROGS)
    bpf(PROG_QUERY, attr, "BPF_PROG_QUERY")
    flags, count = struct.unpack_from("=I", attr, 12)[0], struct.unpack_from("=I", attr, 24)[0]
    return Attached(flags, tuple(ids[: min(count, MAX_PROGS)]))


def attach(cgroup_fd: int, fd: int, flags: int, replace_fd: int = 0) -> None:
    attr = bytearray(20)
    struct.pack_into("=IIIII", attr, 0, cgroup_fd, fd, CGROUP_DEVICE, flags, replace_fd)
    bpf(PROG_ATTACH, attr, "BPF_PROG_ATTACH")


def detach(cgroup_fd: int, fd: int) -> None:
    attr = bytearray(12)
    struct.pack_into("=III", attr, 0, cgroup_fd, fd, CGROUP_DEVICE)
    bpf(PROG_DETACH, attr, "BPF_PROG_DETACH")


def swap(cgroup_fd: int, old_fd: int, new_fd: int, flags: int, replace: bool) -> None:
    """Put `new_fd` where `old_fd` is attached; on any error `old_fd` is still attached."""
    if not flags & F_ALLOW_MULTI:
        attach(cgroup_fd, new_fd, flags)
        return
    if replace:
        attach(cgroup_fd, new_fd, F_ALLOW_MULTI | F_REPLACE, replace_fd=old_fd)
        return
    attach(cgroup_fd, new_fd, F_ALLOW_MULTI)
    try:
        detach(cgroup_fd, old_fd)
    except BpfError:
        # both attached is safe (AND) but leaves a program behind: take the new one back
        with contextlib.suppress(BpfError):
            detach(cgroup_fd, new_fd)
        raise


# -- what the kernel offers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BpfFeatures:
    device_programs: bool
    replace: bool
    reason: str


def features() -> BpfFeatures:
    """Probe, rather than read the kernel version (distribution kernels backport)."""
    try:
        fd = load((df.mov64_imm(df.R0, 0), df.exit_insn()), "hwprov_probe")
    except BpfError as err:
        why = f"the kernel refuses BPF_PROG_TYPE_CGROUP_DEVICE programs: {err}"
        return BpfFeatures(False, False, why)
    read_end, write_end = os.pipe()
    try:
        # Replace the program with itself on a pipe: a kernel that knows BPF_F_REPLACE gets
        # past the flags and fails on the target (EBADF); an older one rejects the flag.
        attach(read_end, fd, F_ALLOW_MULTI | F_REPLACE, replace_fd=fd)
    except BpfError as err:
        if err.errno == errno.EBADF:
            return BpfFeatures(True, True, "BPF_F_REPLACE supported")
        return BpfFeatures(True, False, f"no BPF_F_REPLACE ({err})")
    finally:
        for f in (fd, read_end, write_end):
            os.close(f)
    return BpfFeatures(True, False, "BPF_F_REPLACE probe attached to a pipe")  # pragma: no cover


# -- grants -----------------------------------------------------------------------------------


class _Fds:
    def __init__(self) -> None:
        self.fds: list[int] = []

    def add(self, fd: int) -> int:
        self.fds.append(fd)
        return fd

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


@contextlib.contextmanager
def _open(cgroup: Path) -> Iterator[tuple[_Fds, int]]:
    fds = _Fds()
    try:
        try:
            cg = fds.add(os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError as err:
            raise BpfError(f"cannot open cgroup {cgroup}: {err.strerror}", err.errno or 0) from err
        yield fds, cg
    finally:
        fds.close()


@dataclass(frozen=True, slots=True)
class Program:
    id: int
    fd: int
    info: ProgInfo
    map_fd: int | None  # hwprov's map, when this is hwprov's program


def _programs(fds: _Fds, cg: int, cgroup: Path, strict: bool) -> tuple[Attached, list[Program]]:
    """The programs on the cgroup, hwprov's with their map. `strict` (to allow): one that
    cannot be read is an error. Not strict (to take back): it is skipped, since another
    program can only deny more, and a revoke must reach every map it can."""
    attached = query(cg)
    found = []
    for prog_id in attached.ids:
        try:
            fd = fds.add(prog_fd(prog_id))
            info = prog_info(fd, dump=strict)
            mfd = None
            if info.name == df.PROG_NAME:
                if len(info.map_ids) != 1:
                    raise BpfError(f"named {df.PROG_NAME} but has {len(info.map_ids)} maps")
                mfd = fds.add(map_fd(info.map_ids[0]))
                if map_shape(mfd) != (df.MAP_NAME, df.KEY_SIZE, df.VALUE_SIZE):
                    raise BpfError(f"named {df.PROG_NAME} but its map is not {df.MAP_NAME}")
        except BpfError as err:
            if not strict:
                continue
            # runc skips a program an LSM hides from it; hwprov could not wrap it, and the
            # grant would never work: say so rather than pretend
            raise BpfError(f"{cgroup}: device program {prog_id}: {err}", err.errno) from err
        found.append(Program(prog_id, fd, info, mfd))
    return attached, found


@dataclass(frozen=True, slots=True)
class Applied:
    """What one allow or deny did: for callers that log or time it."""

    wrapped: int  # programs that got hwprov's grant check now
    maps: int  # maps written
    programs: int  # device programs on the cgroup


def _raise_memlock() -> None:
    # Kernels before 5.11 charge programs and maps to RLIMIT_MEMLOCK (runc does the same).
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY,) * 2)


def allow(cgroup: Path, node: df.Node, access: int, replace: bool) -> Applied:
    """Let processes in `cgroup` use `node` with `access` (BPF_DEVCG_ACC_* bits)."""
    _raise_memlock()
    with _open(cgroup) as (fds, cg):
        attached, progs = _programs(fds, cg, cgroup, strict=True)
        if not progs:
            # nothing on this cgroup limits devices: attaching one now would only take away
            return Applied(0, 0, 0)
        maps = [p.map_fd for p in progs if p.map_fd is not None]
        theirs = [p for p in progs if p.map_fd is None]
        if theirs:
            shared = maps[0] if maps else fds.add(create_map())
            built = []
            for p in theirs:
                if p.info.xlated is None:
                    raise BpfError(f"{cgroup}: the kernel does not dump program {p.id}'s "
                                   "instructions (kernel.kptr_restrict, CAP_SYSLOG)")  # fmt: skip
                try:
                    program = df.with_grants(shared, df.decode(p.info.xlated))
                except df.DeviceFilterError as err:
                    raise BpfError(f"{cgroup}: program {p.id} ({p.info.name}): {err}") from err
                built.append((p, fds.add(load(program))))
            # every program is loaded before the first swap: a verifier refusal changes nothing
            for p, fd in built:
                swap(cg, p.fd, fd, attached.flags, replace)
            maps = maps or [shared]
        value = struct.pack("=I", access)
        for m in maps:
            map_update(m, node.key(), value)
        return Applied(len(theirs), len(maps), len(progs))


def deny(cgroup: Path, node: df.Node) -> Applied:
    """Take back a grant: the next open of `node` is decided by the original programs."""
    with _open(cgroup) as (fds, cg):
        _, progs = _programs(fds, cg, cgroup, strict=False)
        maps = [p.map_fd for p in progs if p.map_fd is not None]
        failed: list[BpfError] = []
        for m in maps:
            try:
                map_delete(m, node.key())
            except BpfError as err:
                failed.append(err)  # the other maps still lose the grant
        if failed:
            raise BpfError(f"{cgroup}: {failed[0]}", failed[0].errno)
        return Applied(0, len(maps), len(progs))


def granted(cgroup: Path) -> dict[df.Node, int]:
    """What hwprov's maps on `cgroup` grant: the state an agent restart picks up again."""
    with _open(cgroup) as (fds, cg):
        _, progs = _programs(fds, cg, cgroup, strict=False)
        found: dict[df.Node, int] = {}
        for p in progs:
            if p.map_fd is not None:
                for key, value in map_items(p.map_fd).items():
                    found[df.Node.from_key(key)] = struct.unpack("=I", value)[0]
        return found
