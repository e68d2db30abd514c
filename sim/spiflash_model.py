"""cocotb model of a SPI NOR flash (mode 0) backed by a bytes image.

Commands: READ 0x03 (24-bit address), FAST_READ 0x0B (address and one dummy byte), release
from deep power-down / read device ID 0xAB, deep power-down 0xB9, JEDEC ID 0x9F, read
status 0x05 (never busy). Reads wrap at the end of the image. Commands other than 0xAB while
powered down are ignored and recorded in ``errors``, as are mode-0 violations (SCK high
when chip select falls or rises).

:class:`SpiFlashLogic` is the byte-level behaviour (usable without a simulator);
:class:`SpiFlashModel` puts it on pins: it samples COPI on rising SCK and shifts CIPO out on
falling SCK, most significant bit first, waking once per SCK edge.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, First

READ = 0x03
FAST_READ = 0x0B
RELEASE_POWER_DOWN = 0xAB
POWER_DOWN = 0xB9
JEDEC_ID = 0x9F
READ_STATUS = 0x05


class SpiFlashLogic:
    """Byte-level flash: :meth:`select`, then :meth:`exchange` one byte at a time.

    ``exchange(byte_in)`` returns the byte the flash shifts out in the *next* byte slot,
    which is how a mode-0 flash behaves (output follows the command and address).
    """

    def __init__(
        self,
        image: bytes,
        *,
        jedec_id: bytes = b"\xef\x40\x16",
        device_id: int = 0x15,
        powered_down: bool = False,
    ):
        if not image:
            raise ValueError("flash image must not be empty")
        self.image = bytes(image)
        self.jedec_id = bytes(jedec_id)
        self.device_id = device_id
        self.powered_down = powered_down
        self.errors: list[str] = []
        self.commands: list[int] = []
        self.select()

    def select(self) -> None:
        """Chip select went low: a new command starts."""
        self._bytes_in: list[int] = []
        self._out = iter(())

    def deselect(self) -> None:
        """Chip select went high: commands that act on deselect take effect."""
        if self._bytes_in and self._bytes_in[0] == POWER_DOWN and not self.powered_down:
            self.powered_down = True

    def exchange(self, byte_in: int) -> int:
        """Take one byte from the host; return the next byte to shift out (0xFF when idle)."""
        self._bytes_in.append(byte_in)
        seq = self._bytes_in
        if len(seq) == 1:
            self._command(byte_in)
        elif seq[0] in (READ, FAST_READ) and not self.powered_down:
            header = 4 if seq[0] == READ else 5
            if len(seq) == header:
                addr = int.from_bytes(bytes(seq[1:4]), "big") % len(self.image)
                self._out = self._image_from(addr)
        return next(self._out, 0xFF)

    def _command(self, cmd: int) -> None:
        self.commands.append(cmd)
        if cmd == RELEASE_POWER_DOWN:
            self.powered_down = False
            self._out = iter([0xFF, 0xFF, 0xFF, *[self.device_id] * 1024])
        elif self.powered_down:
            self.errors.append(f"command 0x{cmd:02x} while in deep power-down")
        elif cmd == JEDEC_ID:
            self._out = iter(self.jedec_id)
        elif cmd == READ_STATUS:
            self._out = iter([0x00] * 1024)
        elif cmd not in (READ, FAST_READ, POWER_DOWN):
            self.errors.append(f"unsupported command 0x{cmd:02x}")

    def _image_from(self, addr: int):
        n = len(self.image)
        while True:
            yield self.image[addr]
            addr = (addr + 1) % n


class SpiFlashModel:
    """Pin-level mode-0 SPI flash around :class:`SpiFlashLogic`; call :meth:`start` once."""

    def __init__(self, *, sck, cs_n, copi, cipo, image: bytes, **logic_options):
        self.sck, self.cs_n, self.copi, self.cipo = sck, cs_n, copi, cipo
        self.logic = SpiFlashLogic(image, **logic_options)
        self._task = None

    @property
    def errors(self) -> list[str]:
        """Protocol and timing violations seen so far."""
        return self.logic.errors

    def start(self) -> SpiFlashModel:
        """Start serving in the background; returns self."""
        if self._task is None:
            self.cipo.value = 1
            self._task = cocotb.start_soon(self._run())
        return self

    async def _run(self) -> None:
        while True:
            while int(self.cs_n.value) != 0:
                await FallingEdge(self.cs_n)
            if int(self.sck.value) != 0:
                self.logic.errors.append("SCK high when chip select fell (not mode 0)")
            await self._transaction()

    async def _transaction(self) -> None:
        logic = self.logic
        logic.select()
        shift_in = 0
        nbits = 0
        out_byte = 0xFF
        out_bit = 7
        self.cipo.value = 1
        while True:
            await First(self.sck.value_change, self.cs_n.value_change)
            if int(self.cs_n.value) != 0:
                if int(self.sck.value) != 0:
                    logic.errors.append("SCK high when chip select rose (not mode 0)")
                logic.deselect()
                self.cipo.value = 1
                return
            if int(self.sck.value) == 1:  # rising: sample
                shift_in = ((shift_in << 1) | int(self.copi.value)) & 0xFF
                nbits += 1
                if nbits == 8:
                    out_byte = logic.exchange(shift_in)
                    nbits = 0
                    out_bit = 8  # the next falling edge shows bit 7 of the new byte
            else:  # falling: shift out the next bit
                out_bit -= 1
                if out_bit < 0:
                    out_bit = 7  # the host clocks on without a new byte: repeat idle ones
                    out_byte = 0xFF
                self.cipo.value = (out_byte >> out_bit) & 1
