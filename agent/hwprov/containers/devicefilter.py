"""Device programs for cgroup v2 (BPF_PROG_TYPE_CGROUP_DEVICE), as instructions and bytes.

On cgroup v2 a container's device rules are a BPF program on its cgroup, attached by the
runtime (runc, crun; systemd attaches its own beside it with the systemd cgroup driver). The
kernel runs every program attached along the way on each open or mknod of a device node and
allows only if all of them return 1. A live grant has to change what those programs answer.

Issue 18 asked to read runc and lowRISC container-hotplug, decide, and write down why.

* runc builds one program from its rule list (`devicefilter.go`) and swaps it in. Doing the
  same here needs the container's rules. Rebuilding them from the engine's config
  (HostConfig.Devices + DeviceCgroupRules + the default list) is a guess: the default list is
  the engine's, not runc's, it changes between versions (Docker, balena-engine), and systemd's
  program is not in the config at all. A wrong guess grants something the container never had.
* container-hotplug attaches one fixed program that looks devices up in a hash map, so each
  later grant is a map update; but its program hard-codes the OCI default devices in place of
  the container's own rules.

hwprov takes the map from container-hotplug and the rules from where they are enforced: each
program already on the container's cgroup is replaced, once, by `with_grants(map, program)`,
that is "if (type, major, minor) is in hwprov's map and the access asked for is within the
granted mask: allow; else run the original program, unchanged". The original is read back
from the kernel (its xlated instructions) and kept verbatim, never decompiled. So:

* the result allows at most what the original allowed plus the nodes in the map; a map key is
  an exact (type, major, minor), so a grant is never a wildcard; the default (deny) stays the
  original's;
* every grant and revoke after the first is one map update or delete, atomic in the kernel
  and seen by the next open: a revoke denies before the node is unlinked, with no swap;
* hwprov never has to parse its own program back. A swap-per-grant design would have to find
  the original inside the previous hwprov program after an agent restart, in the verifier's
  rewritten form (dead code removed, zero-extensions on 32-bit JITs). Here the map is the
  state: the program is found by name, the map by id, the grants by reading the map;
* several programs on one cgroup are each wrapped, sharing one map: one update reaches all of
  them and the kernel's AND keeps each one's limits.

The price is BPF_MAP_CREATE, one map fd relocation (ld_imm64 with BPF_PSEUDO_MAP_FD) and one
helper call, plus a check that the original can be loaded again from its dump (`reloadable`):
helper and function calls and map references do not survive a dump (their immediates become
kernel addresses and ids), so they are refused, and the old program stays attached. runc's
programs use none of them (systemd's, with the systemd cgroup driver: not tried here).

`allowlist` builds a program from rules in runc's style: it stands in for the runtime's
program in tests, and shows the shape the wrapper is put in front of. Nothing here makes a
syscall: instructions in, bytes out (containers/bpf.py loads them).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal, NamedTuple

from hwprov.errors import HwprovError

ByteOrder = Literal["little", "big"]

# Instruction classes, sizes, modes, operations (include/uapi/linux/bpf_common.h, bpf.h).
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
W, DW = 0x00, 0x18
IMM, MEM, NOSPEC = 0x00, 0x60, 0xC0
K, X = 0x00, 0x08
ADD, AND, RSH, MOV = 0x00, 0x50, 0x70, 0xB0
JA, JEQ, JNE, CALL, EXIT = 0x00, 0x10, 0x50, 0x80, 0x90

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
PSEUDO_MAP_FD = 1
MAP_LOOKUP_ELEM = 1  # helper id of bpf_map_lookup_elem

# struct bpf_cgroup_dev_ctx: u32 access_type (type | access << 16), u32 major, u32 minor.
CTX_ACCESS_TYPE, CTX_MAJOR, CTX_MINOR = 0, 4, 8
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
ACC_ALL = ACC_MKNOD | ACC_READ | ACC_WRITE

PROG_NAME = "hwprov_devcg"  # how hwprov finds its own programs again (15 bytes at most)
MAP_NAME = "hwprov_grants"
KEY_SIZE, VALUE_SIZE = 12, 4  # key: u32 type, major, minor; value: u32 access mask
MAP_ENTRIES = 256
KEY_AT = -16  # stack offset of the key the wrapper looks up


class DeviceFilterError(HwprovError):
    """A device program cannot be built, or an attached one cannot be carried over."""


class DevType(IntEnum):
    BLOCK = 1
    CHAR = 2


class Insn(NamedTuple):
    """One struct bpf_insn: a tuple, so tests compare decoded bytes with plain tuples."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0


def _format(byteorder: ByteOrder) -> str:
    return "<BBhi" if byteorder == "little" else ">BBhi"


def encode(insns: Iterable[Insn], byteorder: ByteOrder | None = None) -> bytes:
    """The bytes bpf(BPF_PROG_LOAD) takes. dst_reg/src_reg are C bitfields, so which nibble
    holds which register follows the byte order."""
    order = byteorder or sys.byteorder
    out = bytearray()
    for i in insns:
        regs = (i.src << 4) | i.dst if order == "little" else (i.dst << 4) | i.src
        out += struct.pack(_format(order), i.code, regs, i.off, i.imm)
    return bytes(out)


def decode(data: bytes, byteorder: ByteOrder | None = None) -> tuple[Insn, ...]:
    order = byteorder or sys.byteorder
    if len(data) % 8:
        raise DeviceFilterError(f"a program of {len(data)} bytes is not whole instructions")
    found = []
    for code, regs, off, imm in struct.iter_unpack(_format(order), data):
        lo, hi = regs & 0x0F, regs >> 4
        dst, src = (lo, hi) if order == "little" else (hi, lo)
        found.append(Insn(code, dst, src, off, imm))
    return tuple(found)


# -- the few instructions the builders emit ------------------------------------------------


def mov64_reg(dst: int, src: int) -> Insn:
    return Insn(ALU64 | MOV | X, dst, src)


def mov64_imm(dst: int, imm: int) -> Insn:
    return Insn(ALU64 | MOV | K, dst, 0, 0, imm)


def alu64_imm(op: int, dst: int, imm: int) -> Insn:
    return Insn(ALU64 | op | K, dst, 0, 0, imm)


def alu64_reg(op: int, dst: int, src: int) -> Insn:
    return Insn(ALU64 | op | X, dst, src)


def ldx_w(dst: int, src: int, off: int) -> Insn:
    return Insn(LDX | MEM | W, dst, src, off)


def stx_w(dst: int, src: int, off: int) -> Insn:
    return Insn(STX | MEM | W, dst, src, off)


def ld_map_fd(dst: int, fd: int) -> tuple[Insn, Insn]:
    # A 16-byte ld_imm64; the kernel swaps the fd for the map's address at load time.
    return Insn(LD | IMM | DW, dst, PSEUDO_MAP_FD, 0, fd), Insn(0)


def call(helper: int) -> Insn:
    return Insn(JMP | CALL, imm=helper)


def jmp_imm(op: int, dst: int, imm: int, off: int) -> Insn:
    return Insn(JMP | op | K, dst, 0, off, imm)


def jmp_reg(op: int, dst: int, src: int, off: int) -> Insn:
    return Insn(JMP | op | X, dst, src, off)


def exit_insn() -> Insn:
    return Insn(JMP | EXIT)


# -- what is asked and granted --------------------------------------------------------------


def access_mask(permissions: str) -> int:
    """`rw`, `rwm`, ... as the BPF_DEVCG_ACC_* bits the kernel passes in access_type."""
    bits = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
    mask = 0
    for p in permissions:
        if p not in bits:
            raise DeviceFilterError(f"unknown device access {p!r} in {permissions!r}")
        mask |= bits[p]
    if not mask:
        raise DeviceFilterError("no device access given")
    return mask


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """One exact device number: what a grant is for, and the key of hwprov's map."""

    kind: DevType
    major: int
    minor: int

    def __post_init__(self) -> None:
        for name, value in (("major", self.major), ("minor", self.minor)):
            if not 0 <= value < 2**32:
                raise DeviceFilterError(f"{name} {value} is not a device number")

    def key(self, byteorder: ByteOrder | None = None) -> bytes:
        order = "<" if (byteorder or sys.byteorder) == "little" else ">"
        return struct.pack(f"{order}III", self.kind, self.major, self.minor)

    @classmethod
    def from_key(cls, key: bytes, byteorder: ByteOrder | None = None) -> Node:
        order = "<" if (byteorder or sys.byteorder) == "little" else ">"
        kind, major, minor = struct.unpack(f"{order}III", key)
        return cls(DevType(kind), major, minor)


@dataclass(frozen=True, slots=True)
class Rule:
    """An allow rule as runc takes it: `c 1:3 rwm`, `c *:* m`; None is a wildcard."""

    kind: DevType | None
    major: int | None
    minor: int | None
    access: int

    @classmethod
    def parse(cls, text: str) -> Rule:
        try:
            kind_s, numbers, perms = text.split()
            major_s, minor_s = numbers.split(":")
        except ValueError:
            raise DeviceFilterError(f"{text!r} is not a device rule ('c 1:3 rwm')") from None
        kinds = {"a": None, "b": DevType.BLOCK, "c": DevType.CHAR}
        if kind_s not in kinds:
            raise DeviceFilterError(f"{text!r}: unknown device type {kind_s!r}")

        def number(s: str) -> int | None:
            if s == "*":
                return None
            if not s.isdigit():
                raise DeviceFilterError(f"{text!r}: {s!r} is not a device number")
            return int(s)

        return cls(kinds[kind_s], number(major_s), number(minor_s), access_mask(perms))


# -- the programs -----------------------------------------------------------------------------


_CONDITIONAL = (JMP | JNE | K, JMP | JNE | X)


def allowlist(rules: Sequence[Rule]) -> tuple[Insn, ...]:
    """Allow exactly `rules`, deny the rest, in the block-per-rule shape runc's programs have:
    r2 = type, r3 = access, r4 = major, r5 = minor, then per rule a chain of "not this: next"."""
    out: list[Insn] = [
        ldx_w(R2, R1, CTX_ACCESS_TYPE),
        alu64_imm(AND, R2, 0xFFFF),
        ldx_w(R3, R1, CTX_ACCESS_TYPE),
        alu64_imm(RSH, R3, 16),
        ldx_w(R4, R1, CTX_MAJOR),
        ldx_w(R5, R1, CTX_MINOR),
    ]
    for rule in rules:
        tests: list[Insn] = []  # each one jumps past this rule's block when it fails
        if rule.kind is not None:
            tests.append(jmp_imm(JNE, R2, rule.kind, 0))
        if rule.access != ACC_ALL:
            tests += [mov64_reg(R0, R3), alu64_imm(AND, R0, rule.access), jmp_reg(JNE, R0, R3, 0)]
        if rule.major is not None:
            tests.append(jmp_imm(JNE, R4, rule.major, 0))
        if rule.minor is not None:
            tests.append(jmp_imm(JNE, R5, rule.minor, 0))
        block = [*tests, mov64_imm(R0, 1), exit_insn()]
        out += [
            i._replace(off=len(block) - n - 1) if i.code in _CONDITIONAL else i
            for n, i in enumerate(block)
        ]
    return (*out, mov64_imm(R0, 0), exit_insn())


def _grant_check(map_fd: int) -> list[Insn]:
    """Allow when (type, major, minor) is in the map and the access is within its mask.

    ctx moves to r6 (kept across the helper call) and back to r1 before the original program,
    which then starts as the kernel would start it: r1 = ctx, nothing else it may read."""
    return [
        mov64_reg(R6, R1),
        ldx_w(R2, R6, CTX_ACCESS_TYPE),
        alu64_imm(AND, R2, 0xFFFF),
        stx_w(R10, R2, KEY_AT),
        ldx_w(R2, R6, CTX_MAJOR),
        stx_w(R10, R2, KEY_AT + 4),
        ldx_w(R2, R6, CTX_MINOR),
        stx_w(R10, R2, KEY_AT + 8),
        *ld_map_fd(R1, map_fd),
        mov64_reg(R2, R10),
        alu64_imm(ADD, R2, KEY_AT),
        call(MAP_LOOKUP_ELEM),
        jmp_imm(JEQ, R0, 0, 7),  # not granted: the original decides
        ldx_w(R3, R0, 0),
        ldx_w(R2, R6, CTX_ACCESS_TYPE),
        alu64_imm(RSH, R2, 16),
        alu64_reg(AND, R3, R2),
        jmp_reg(JNE, R3, R2, 2),  # asks for more than granted: the original decides
        mov64_imm(R0, 1),
        exit_insn(),
        mov64_reg(R1, R6),
    ]


GRANT_CHECK_LEN = len(_grant_check(0))


def with_grants(map_fd: int, original: Sequence[Insn]) -> tuple[Insn, ...]:
    """hwprov's map in front of an attached program: the original's rules, or a granted node."""
    return (*_grant_check(map_fd), *reloadable(original))


def reloadable(insns: Sequence[Insn]) -> tuple[Insn, ...]:
    """The dumped (xlated) form of an attached program, made loadable again, or an error.

    A dump is what the verifier left: helper and function calls carry kernel addresses, map
    loads carry map ids, speculation barriers are not user instructions; none can be loaded
    as is, and runc's programs have none, so they are refused. The verifier's
    zero-extension marker (`mov32 rX, rX` with imm 1, added for 32-bit JITs) is a plain move
    with a reserved field set: put back to imm 0, which every verifier takes."""
    if not insns:
        raise DeviceFilterError("the attached program is empty (its instructions were not dumped)")
    out: list[Insn] = []
    n, skip = len(insns), False
    for at, i in enumerate(insns):
        if skip:
            skip = False
            out.append(i)
            continue
        cls, op = i.code & 0x07, i.code & 0xF0
        where = f"instruction {at} (code {i.code:#04x})"
        if cls in (JMP, JMP32) and op == CALL:
            raise DeviceFilterError(f"{where}: the program calls a helper or function")
        if cls == LD:
            if i.code != LD | IMM | DW or i.src != 0 or at + 1 >= n:
                raise DeviceFilterError(f"{where}: the program loads a map or an address")
            skip = True
        if cls == ST and i.code & 0xE0 == NOSPEC:
            raise DeviceFilterError(f"{where}: a speculation barrier the verifier added")
        if cls in (JMP, JMP32) and op not in (CALL, EXIT):
            step = i.imm if cls == JMP32 and op == JA else i.off
            if not 0 <= at + 1 + step < n:
                raise DeviceFilterError(f"{where}: jumps out of the program")
        if i.code == ALU | MOV | X and i.dst == i.src and i.imm == 1 and i.off == 0:
            i = i._replace(imm=0)
        out.append(i)
    return tuple(out)
