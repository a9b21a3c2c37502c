"""The cgroup v2 device programs, instruction by instruction, and run without a kernel.

`run` is a small interpreter of the instructions the builders emit (and of runc-style
programs): registers, a 512-byte stack, the device context, one hash map and the
bpf_map_lookup_elem helper. Reading a register nobody wrote is an error, as the verifier
makes it, so a wrapped program that leaned on the wrapper's leftovers would fail here.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

import pytest
from hwprov.containers import devicefilter as df
from hwprov.containers.devicefilter import (
    ACC_ALL,
    ACC_MKNOD,
    ACC_READ,
    ACC_WRITE,
    DevType,
    Insn,
    Node,
    Rule,
)
from hypothesis import given
from hypothesis import strategies as st

C, B = DevType.CHAR, DevType.BLOCK
RW = ACC_READ | ACC_WRITE
MAP_FD = 7


# -- the interpreter ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ptr:
    region: str  # ctx, stack, value, map
    off: int = 0
    key: bytes = b""


Reg = int | Ptr | None


class Fault(Exception):
    pass


def run(
    insns: tuple[Insn, ...] | list[Insn],
    kind: int,
    major: int,
    minor: int,
    access: int,
    maps: dict[int, dict[bytes, int]] | None = None,
) -> int:
    maps = maps or {}
    ctx = struct.pack("=III", kind | access << 16, major, minor)
    stack = bytearray(512)
    regs: list[Reg] = [None] * 11
    regs[1], regs[10] = Ptr("ctx"), Ptr("stack", 512)
    pc, steps = 0, 0

    def get(r: int) -> int | Ptr:
        value = regs[r]
        if value is None:
            raise Fault(f"pc {pc}: r{r} read before it was written")
        return value

    def num(r: int) -> int:
        value = get(r)
        if isinstance(value, Ptr):
            raise Fault(f"pc {pc}: r{r} is a pointer")
        return value

    while True:
        steps += 1
        if steps > 10_000 or not 0 <= pc < len(insns):
            raise Fault(f"pc {pc}: ran off the program")
        i = insns[pc]
        cls, op, src_x = i.code & 0x07, i.code & 0xF0, i.code & 0x08
        if cls in (df.ALU, df.ALU64):
            width = (1 << 64) - 1 if cls == df.ALU64 else (1 << 32) - 1
            if op == df.MOV and src_x and cls == df.ALU64:
                regs[i.dst] = get(i.src)  # pointers move as they are
                pc += 1
                continue
            operand = num(i.src) & width if src_x else i.imm & width  # imm: sign-extended
            if op == df.MOV:
                regs[i.dst] = operand
            elif op == df.ADD and isinstance(regs[i.dst], Ptr):
                p = get(i.dst)
                assert isinstance(p, Ptr)
                regs[i.dst] = Ptr(p.region, p.off + i.imm, p.key)
            elif op in (df.ADD, df.AND, df.RSH):
                a = num(i.dst) & width
                regs[i.dst] = {
                    df.ADD: (a + operand) & width, df.AND: a & operand, df.RSH: a >> operand,
                }[op]  # fmt: skip
            else:
                raise Fault(f"pc {pc}: ALU op {op:#x} not in the subset")
        elif i.code == df.LDX | df.MEM | df.W:
            p = get(i.src)
            if not isinstance(p, Ptr):
                raise Fault(f"pc {pc}: load through a number")
            at = p.off + i.off
            if p.region == "ctx":
                regs[i.dst] = int.from_bytes(ctx[at : at + 4], sys.byteorder)
            elif p.region == "stack":
                regs[i.dst] = int.from_bytes(stack[at : at + 4], sys.byteorder)
            elif p.region == "value":
                regs[i.dst] = maps[MAP_FD][p.key] if at == 0 else 0
            else:
                raise Fault(f"pc {pc}: load from {p.region}")
        elif i.code == df.STX | df.MEM | df.W:
            p = get(i.dst)
            if not isinstance(p, Ptr) or p.region != "stack":
                raise Fault(f"pc {pc}: store outside the stack")
            at = p.off + i.off
            stack[at : at + 4] = (num(i.src) & 0xFFFFFFFF).to_bytes(4, sys.byteorder)
        elif i.code == df.LD | df.IMM | df.DW:
            if i.src == df.PSEUDO_MAP_FD:
                regs[i.dst] = Ptr("map", i.imm)
            else:
                regs[i.dst] = (i.imm & 0xFFFFFFFF) | (insns[pc + 1].imm & 0xFFFFFFFF) << 32
            pc += 1
        elif i.code == df.JMP | df.CALL:
            if i.imm != df.MAP_LOOKUP_ELEM:
                raise Fault(f"pc {pc}: helper {i.imm}")
            m, k = get(1), get(2)
            assert isinstance(m, Ptr) and m.region == "map" and isinstance(k, Ptr)
            key = bytes(stack[k.off : k.off + df.KEY_SIZE])
            regs[0] = Ptr("value", 0, key) if key in maps[m.off] else 0
            regs[1:6] = [None] * 5  # the helper call clobbers r1-r5
        elif i.code == df.JMP | df.EXIT:
            return num(0)
        elif cls == df.JMP:
            a = get(i.dst)
            b = get(i.src) if src_x else i.imm & ((1 << 64) - 1)
            if op == df.JA:
                taken = True
            elif op == df.JEQ:
                taken = a == b
            elif op == df.JNE:
                taken = a != b
            else:
                raise Fault(f"pc {pc}: jump op {op:#x} not in the subset")
            if taken:
                pc += i.off
        else:
            raise Fault(f"pc {pc}: code {i.code:#04x} not in the subset")
        pc += 1


def grants_map(grants: dict[Node, int]) -> dict[int, dict[bytes, int]]:
    return {MAP_FD: {n.key(): mask for n, mask in grants.items()}}


RUNC_DEFAULTS = [
    Rule.parse(r)
    for r in (
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm",
    )
]  # fmt: skip


# -- bytes -------------------------------------------------------------------------------------


def test_an_instruction_is_eight_bytes_with_registers_in_the_byte_orders_nibbles() -> None:
    insn = df.ldx_w(df.R2, df.R6, 4)
    assert df.encode([insn], "little") == bytes([0x61, 0x62, 4, 0, 0, 0, 0, 0])
    assert df.encode([insn], "big") == bytes([0x61, 0x26, 0, 4, 0, 0, 0, 0])
    jump = df.jmp_imm(df.JNE, df.R4, 188, -3)
    assert df.encode([jump], "little") == bytes([0x55, 0x04, 0xFD, 0xFF, 188, 0, 0, 0])
    for order in ("little", "big"):
        program = df.allowlist(RUNC_DEFAULTS)
        assert df.decode(df.encode(program, order), order) == program


def test_decode_refuses_a_partial_instruction() -> None:
    with pytest.raises(df.DeviceFilterError, match="not whole instructions"):
        df.decode(b"\0" * 12)


# -- the runc-style builder --------------------------------------------------------------------


def test_allowlist_instruction_by_instruction() -> None:
    program = df.allowlist([Rule.parse("c 1:3 rwm"), Rule.parse("c *:* m"), Rule.parse("b 8:0 r")])
    assert df.decode(df.encode(program)) == (
        (0x61, 2, 1, 0, 0),  # r2 = ctx->access_type
        (0x57, 2, 0, 0, 0xFFFF),  # r2 &= 0xffff: the device type
        (0x61, 3, 1, 0, 0),  # r3 = ctx->access_type
        (0x77, 3, 0, 0, 16),  # r3 >>= 16: the access asked for
        (0x61, 4, 1, 4, 0),  # r4 = ctx->major
        (0x61, 5, 1, 8, 0),  # r5 = ctx->minor
        # c 1:3 rwm (all access: no access test)
        (0x55, 2, 0, 4, 2),  # if r2 != c goto next
        (0x55, 4, 0, 3, 1),  # if r4 != 1 goto next
        (0x55, 5, 0, 2, 3),  # if r5 != 3 goto next
        (0xB7, 0, 0, 0, 1),  # r0 = 1
        (0x95, 0, 0, 0, 0),  # exit
        # c *:* m
        (0x55, 2, 0, 5, 2),
        (0xBF, 0, 3, 0, 0),  # r0 = r3
        (0x57, 0, 0, 0, ACC_MKNOD),  # r0 &= m
        (0x5D, 0, 3, 2, 0),  # if r0 != r3 goto next: asks for more than m
        (0xB7, 0, 0, 0, 1),
        (0x95, 0, 0, 0, 0),
        # b 8:0 r
        (0x55, 2, 0, 7, 1),
        (0xBF, 0, 3, 0, 0),
        (0x57, 0, 0, 0, ACC_READ),
        (0x5D, 0, 3, 4, 0),
        (0x55, 4, 0, 3, 8),
        (0x55, 5, 0, 2, 0),
        (0xB7, 0, 0, 0, 1),
        (0x95, 0, 0, 0, 0),
        (0xB7, 0, 0, 0, 0),  # nothing matched: deny
        (0x95, 0, 0, 0, 0),
    )


def test_allowlist_allows_the_rules_and_denies_the_rest() -> None:
    program = df.allowlist(RUNC_DEFAULTS)
    assert run(program, C, 1, 3, RW) == 1  # /dev/null
    assert run(program, C, 136, 4, RW) == 1  # a pty: 136:*
    assert run(program, C, 188, 0, ACC_MKNOD) == 1  # c *:* m
    assert run(program, C, 188, 0, ACC_READ) == 0
    assert run(program, B, 8, 0, ACC_MKNOD) == 1
    assert run(program, B, 1, 3, RW) == 0  # the same numbers as a block device
    assert run(df.allowlist([]), C, 1, 3, ACC_READ) == 0


# -- the grant check in front of an attached program -------------------------------------------


def test_with_grants_instruction_by_instruction() -> None:
    base = df.allowlist([Rule.parse("c 1:3 rwm")])
    program = df.decode(df.encode(df.with_grants(MAP_FD, base)))
    assert program[: df.GRANT_CHECK_LEN] == (
        (0xBF, 6, 1, 0, 0),  # r6 = r1: ctx survives the helper call
        (0x61, 2, 6, 0, 0),
        (0x57, 2, 0, 0, 0xFFFF),
        (0x63, 10, 2, -16, 0),  # key.type
        (0x61, 2, 6, 4, 0),
        (0x63, 10, 2, -12, 0),  # key.major
        (0x61, 2, 6, 8, 0),
        (0x63, 10, 2, -8, 0),  # key.minor
        (0x18, 1, df.PSEUDO_MAP_FD, 0, MAP_FD),  # r1 = the map (fd, relocated by the kernel)
        (0x00, 0, 0, 0, 0),
        (0xBF, 2, 10, 0, 0),
        (0x07, 2, 0, 0, -16),  # r2 = &key
        (0x85, 0, 0, 0, df.MAP_LOOKUP_ELEM),
        (0x15, 0, 0, 7, 0),  # not in the map: the original decides
        (0x61, 3, 0, 0, 0),  # r3 = granted mask
        (0x61, 2, 6, 0, 0),
        (0x77, 2, 0, 0, 16),  # r2 = access asked for
        (0x5F, 3, 2, 0, 0),
        (0x5D, 3, 2, 2, 0),  # more than granted: the original decides
        (0xB7, 0, 0, 0, 1),
        (0x95, 0, 0, 0, 0),
        (0xBF, 1, 6, 0, 0),  # r1 = ctx again, as the original expects
    )
    assert program[df.GRANT_CHECK_LEN :] == base


def test_a_grant_is_one_exact_node_with_at_most_its_access() -> None:
    program = df.with_grants(MAP_FD, df.allowlist(RUNC_DEFAULTS))
    maps = grants_map({Node(C, 188, 0): RW})
    assert run(program, C, 188, 0, RW, maps) == 1
    assert run(program, C, 188, 0, ACC_READ, maps) == 1
    assert run(program, C, 188, 1, ACC_READ, maps) == 0  # never a wildcard
    assert run(program, B, 188, 0, ACC_READ, maps) == 0
    assert run(program, C, 189, 0, ACC_READ, maps) == 0
    assert run(program, C, 188, 0, ACC_MKNOD, maps) == 1  # the original's c *:* m
    assert run(program, C, 188, 0, ACC_ALL, maps) == 0  # rwm: more than granted, not in base
    assert run(program, C, 1, 3, RW, maps) == 1  # the original's rules still hold
    assert run(program, C, 188, 0, RW, grants_map({})) == 0  # revoked: back to the original


def test_a_grant_does_not_lift_the_originals_deny_for_other_nodes() -> None:
    deny_all = (df.mov64_imm(df.R0, 0), df.exit_insn())
    program = df.with_grants(MAP_FD, deny_all)
    maps = grants_map({Node(C, 1, 5): RW})
    assert run(program, C, 1, 5, RW, maps) == 1
    assert run(program, C, 1, 3, RW, maps) == 0


requests = st.tuples(
    st.sampled_from([B, C]), st.integers(0, 4), st.integers(0, 4), st.integers(1, ACC_ALL)
)
rules = st.builds(
    Rule,
    st.sampled_from([None, B, C]),
    st.none() | st.integers(0, 4),
    st.none() | st.integers(0, 4),
    st.integers(1, ACC_ALL),
)
grants = st.dictionaries(
    st.builds(Node, st.sampled_from([B, C]), st.integers(0, 4), st.integers(0, 4)),
    st.integers(1, ACC_ALL),
    max_size=4,
)


def allowed_by(rule: Rule, kind: int, major: int, minor: int, access: int) -> bool:
    return (
        rule.kind in (None, kind)
        and rule.major in (None, major)
        and rule.minor in (None, minor)
        and access & rule.access == access
    )


@given(st.lists(rules, max_size=5), grants, requests)
def test_the_wrapped_program_allows_the_original_or_an_exact_grant_and_nothing_else(
    base_rules: list[Rule], granted: dict[Node, int], request: tuple[DevType, int, int, int]
) -> None:
    kind, major, minor, access = request
    base = df.allowlist(base_rules)
    original = any(allowed_by(r, kind, major, minor, access) for r in base_rules)
    assert run(base, kind, major, minor, access) == original
    mask = granted.get(Node(kind, major, minor))
    expected = original or (mask is not None and access & mask == access)
    program = df.with_grants(MAP_FD, base)
    assert run(program, kind, major, minor, access, grants_map(granted)) == expected


# -- what can be carried over from a dump ------------------------------------------------------


def test_a_dumped_program_with_calls_or_maps_is_refused() -> None:
    base = df.allowlist([Rule.parse("c 1:3 rwm")])
    for bad, message in (
        ([df.call(df.MAP_LOOKUP_ELEM)], "instruction 0 .* calls a helper"),
        ([Insn(df.JMP | df.CALL, src=1, imm=3)], "calls a helper or function"),
        (list(df.ld_map_fd(df.R1, 3)), "loads a map"),
        ([Insn(df.ST | df.NOSPEC)], "speculation barrier"),
        ([df.jmp_imm(df.JEQ, df.R2, 0, 100)], "jumps out"),
        ([df.jmp_imm(df.JEQ, df.R2, 0, -2)], "jumps out"),  # into the grant check
    ):
        with pytest.raises(df.DeviceFilterError, match=message):
            df.with_grants(MAP_FD, [*bad, *base])
    with pytest.raises(df.DeviceFilterError, match="empty"):
        df.reloadable(())


def test_constants_and_the_verifiers_zero_extension_marks_are_carried_over() -> None:
    constant = (Insn(df.LD | df.IMM | df.DW, 3, 0, 0, 5), Insn(0, imm=0))
    zext = Insn(df.ALU | df.MOV | df.X, 3, 3, 0, 1)  # what a 32-bit JIT's verifier inserts
    program = (*constant, zext, df.mov64_reg(df.R0, df.R3), df.exit_insn())
    plain = zext._replace(imm=0)
    assert df.reloadable(program) == (*constant, plain, *program[3:])
    assert run(df.reloadable(program), C, 1, 3, RW) == 5


# -- numbers and rules -------------------------------------------------------------------------


def test_access_masks_rules_and_nodes() -> None:
    assert df.access_mask("rw") == RW and df.access_mask("rwm") == ACC_ALL
    assert df.access_mask("m") == ACC_MKNOD and df.access_mask("w") == ACC_WRITE
    for bad in ("", "rx"):
        with pytest.raises(df.DeviceFilterError):
            df.access_mask(bad)
    assert Rule.parse("c *:* m") == Rule(C, None, None, ACC_MKNOD)
    assert Rule.parse("a *:* rwm") == Rule(None, None, None, ACC_ALL)
    for bad in ("c 1 rwm", "x 1:3 rwm", "c 1:y rwm"):
        with pytest.raises(df.DeviceFilterError):
            Rule.parse(bad)
    node = Node(C, 188, 7)
    assert Node.from_key(node.key()) == node and len(node.key()) == df.KEY_SIZE
    with pytest.raises(df.DeviceFilterError, match="not a device number"):
        Node(C, -1, 0)
    assert len(df.PROG_NAME) <= 15 and len(df.MAP_NAME) <= 15  # BPF_OBJ_NAME_LEN - 1
