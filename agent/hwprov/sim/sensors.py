"""Register models of real I2C sensors, as the bus sees them: write(bytes) then read(n).

Pure Python; the values mirror the datasheets' reset/identification registers.
"""

from __future__ import annotations

from collections.abc import Callable

from hwprov.plugins.i2cprobe import crc8_sensirion


class RegisterChip:
    """8-bit register file: the first written byte sets the pointer, which auto-increments."""

    def __init__(self, regs: dict[int, int]) -> None:
        self.regs = bytearray(256)
        for k, v in regs.items():
            self.regs[k] = v
        self.ptr = 0

    def write(self, data: bytes) -> None:
        if data:
            self.ptr = data[0]
            for b in data[1:]:
                self.regs[self.ptr] = b
                self.ptr = (self.ptr + 1) & 0xFF

    def read(self, n: int) -> bytes:
        out = bytes(self.regs[(self.ptr + i) & 0xFF] for i in range(n))
        self.ptr = (self.ptr + n) & 0xFF
        return out


class WordRegisterChip(RegisterChip):
    """16-bit big-endian registers behind a pointer (ADS1115, MCP9808)."""

    def __init__(self, words: dict[int, int]) -> None:
        super().__init__({})
        self.words = dict(words)

    def write(self, data: bytes) -> None:
        if data:
            self.ptr = data[0]
            if len(data) >= 3:
                self.words[self.ptr] = (data[1] << 8) | data[2]

    def read(self, n: int) -> bytes:
        word = self.words.get(self.ptr, 0)
        return bytes([word >> 8, word & 0xFF, *([0] * max(0, n - 2))])[:n]


class SHT3x:
    """Sensirion SHT3x: 16-bit commands, replies of 16-bit words each followed by a CRC-8."""

    def __init__(self) -> None:
        self.reply = b""

    @staticmethod
    def _word(value: int) -> bytes:
        data = bytes([value >> 8, value & 0xFF])
        return data + bytes([crc8_sensirion(data)])

    def write(self, data: bytes) -> None:
        command = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
        if command == 0xF32D:  # read status register (datasheet 4.11): 0x8010 after reset
            self.reply = self._word(0x8010)
        elif command == 0x2400:  # single shot, high repeatability: ~23.4 C, ~45 %RH
            self.reply = self._word(0x6666) + self._word(0x7333)
        elif command == 0x3780:  # read serial number
            self.reply = self._word(0x1234) + self._word(0x5678)

    def read(self, n: int) -> bytes:
        out, self.reply = self.reply[:n], self.reply[n:]
        return out + bytes(n - len(out))


Chip = RegisterChip | SHT3x
MODELS: dict[str, Callable[[], Chip]] = {
    # BME280 chip id 0xD0 = 0x60, ctrl_hum 0xF2, status 0xF3 idle
    "bme280": lambda: RegisterChip({0xD0: 0x60, 0xF3: 0x00, 0x88: 0x70, 0x89: 0x6B}),
    "bmp280": lambda: RegisterChip({0xD0: 0x58, 0xF3: 0x00}),
    "bme680": lambda: RegisterChip({0xD0: 0x61}),
    "sht31": SHT3x,
    # ADS1115: config 0x8583, lo_thresh 0x8000, hi_thresh 0x7FFF after reset
    "ads1115": lambda: WordRegisterChip({0: 0, 1: 0x8583, 2: 0x8000, 3: 0x7FFF}),
    # MCP9808: manufacturer id 0x0054 (reg 6), device id 0x0400 (reg 7), 25.0 C (reg 5)
    "mcp9808": lambda: WordRegisterChip({5: 0xC190, 6: 0x0054, 7: 0x0400}),
}
