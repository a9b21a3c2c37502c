"""i2c-dev emulated at the ioctl level on a umockdev node: smbus2 talks to modelled sensors.

Runs in umockdev's worker thread of the simulator process; must never raise into umockdev.
"""

from __future__ import annotations

import errno
import logging
import struct
import threading

from hwprov.sim.sensors import MODELS, Chip
from hwprov.sim.umockdev import UMockdev

log = logging.getLogger(__name__)
# <linux/i2c-dev.h>
I2C_RETRIES, I2C_TIMEOUT, I2C_SLAVE, I2C_TENBIT = 0x0701, 0x0702, 0x0703, 0x0704
I2C_FUNCS, I2C_SLAVE_FORCE, I2C_RDWR, I2C_PEC, I2C_SMBUS = 0x0705, 0x0706, 0x0707, 0x0708, 0x0720
I2C_M_RD = 0x0001
QUICK, BYTE, BYTE_DATA, WORD_DATA, PROC_CALL, BLOCK_DATA, _, _, I2C_BLOCK_DATA = range(9)
BLOCK_MAX = 32
RDWR_MAX_MSGS = 42
# i2c-bcm2835: I2C_FUNC_I2C | I2C_FUNC_PROTOCOL_MANGLING | I2C_FUNC_SMBUS_EMUL
FUNCS = 0x00000001 | 0x00000004 | 0x0EFF0008
SMBUS_DATA = struct.Struct("=BBxxIQ")  # read_write, command, size, union i2c_smbus_data *
RDWR_DATA = struct.Struct("=QI4x")  # struct i2c_msg *msgs, u32 nmsgs
I2C_MSG = struct.Struct("=HHH2xQ")  # addr, flags, len, buf *


class I2CBusEmulator(UMockdev.IoctlBase):
    def __init__(self, chips: dict[int, str], nack_errno: int = errno.EREMOTEIO) -> None:
        super().__init__()
        self.nack_errno = nack_errno
        self.lock = threading.Lock()
        self.chips: dict[int, Chip] = {a: MODELS[m]() for a, m in chips.items()}
        self.models = dict(chips)
        self.busy: set[int] = set()  # addresses a kernel driver claims: I2C_SLAVE says EBUSY
        self.target: dict[object, int] = {}  # per open fd

    def add(self, address: int, model: str) -> None:
        with self.lock:
            self.chips[address], self.models[address] = MODELS[model](), model

    def remove(self, address: int) -> None:
        with self.lock:
            self.chips.pop(address, None)
            self.models.pop(address, None)

    def do_handle_ioctl(self, client: UMockdev.IoctlClient) -> bool:
        try:
            with self.lock:
                res, err = self._dispatch(client, client.get_request(), client.get_arg())
        except Exception:  # an exception here would hang the caller; answer EIO instead
            log.exception("i2c emulation failed")
            res, err = -1, errno.EIO
        client.complete(res, err)
        return True

    def _dispatch(self, client: object, req: int, arg: UMockdev.IoctlData) -> tuple[int, int]:
        if req in (I2C_SLAVE, I2C_SLAVE_FORCE):
            address = struct.unpack("=Q", bytes(arg.retrieve()))[0]
            if address > 0x7F:
                return -1, errno.EINVAL
            if req == I2C_SLAVE and address in self.busy:
                return -1, errno.EBUSY
            self.target[client] = address
            return 0, 0
        if req in (I2C_TENBIT, I2C_PEC, I2C_RETRIES, I2C_TIMEOUT):
            return 0, 0
        if req == I2C_FUNCS:
            arg.resolve(0, 8).update(0, struct.pack("=Q", FUNCS))
            return 0, 0
        if req == I2C_SMBUS:
            return self._smbus(self.chips.get(self.target.get(client, -1)), arg)
        if req == I2C_RDWR:
            return self._rdwr(arg)
        return -1, errno.ENOTTY

    def _smbus(self, chip: Chip | None, arg: UMockdev.IoctlData) -> tuple[int, int]:
        hdr = arg.resolve(0, SMBUS_DATA.size)
        rw, cmd, size, _ = SMBUS_DATA.unpack(bytes(hdr.retrieve()))
        if chip is None:
            return -1, self.nack_errno
        if size == QUICK:
            return 0, 0
        data = hdr.resolve(8, BLOCK_MAX + 2)
        buf = bytes(data.retrieve()) if data is not None else b""
        read = rw == 1
        if size == BYTE:
            data.update(0, chip.read(1)) if read else chip.write(bytes([cmd]))
        elif size in (BYTE_DATA, WORD_DATA):
            n = 1 if size == BYTE_DATA else 2
            if read:
                chip.write(bytes([cmd]))
                raw = chip.read(n)
                # SMBus words travel low byte first: a register chip's bytes in bus order
                data.update(0, raw)
            else:
                chip.write(bytes([cmd]) + buf[:n])
        elif size == PROC_CALL:
            chip.write(bytes([cmd]) + buf[:2])
            data.update(0, chip.read(2))
        elif size == I2C_BLOCK_DATA:
            n = min(buf[0], BLOCK_MAX)
            if read:
                chip.write(bytes([cmd]))
                data.update(0, bytes([n]) + chip.read(n))
            else:
                chip.write(bytes([cmd]) + buf[1 : 1 + n])
        elif size == BLOCK_DATA:
            if read:
                chip.write(bytes([cmd]))
                n = min(chip.read(1)[0], BLOCK_MAX)
                data.update(0, bytes([n]) + chip.read(n))
            else:
                n = min(buf[0], BLOCK_MAX)
                chip.write(bytes([cmd]) + buf[1 : 1 + n])
        else:
            return -1, errno.EOPNOTSUPP
        return 0, 0

    def _rdwr(self, arg: UMockdev.IoctlData) -> tuple[int, int]:
        hdr = arg.resolve(0, RDWR_DATA.size)
        _, nmsgs = RDWR_DATA.unpack(bytes(hdr.retrieve()))
        if not 0 < nmsgs <= RDWR_MAX_MSGS:
            return -1, errno.EINVAL
        msgs = hdr.resolve(0, I2C_MSG.size * nmsgs)
        raw = bytes(msgs.retrieve())
        for i in range(nmsgs):
            address, flags, length, _ = I2C_MSG.unpack_from(raw, i * I2C_MSG.size)
            chip = self.chips.get(address)
            if chip is None:
                return -1, self.nack_errno
            buf = msgs.resolve(i * I2C_MSG.size + 8, length)
            if flags & I2C_M_RD:
                buf.update(0, chip.read(length))
            else:
                chip.write(bytes(buf.retrieve()) if buf is not None else b"")
        return nmsgs, 0
