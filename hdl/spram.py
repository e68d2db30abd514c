"""One table lane stored in iCE40 UP5K SPRAM (SB_SPRAM256KA: 16k words of 16 bits).

The bitstream does not initialise SPRAM, so its contents are written at run time. On an
iCE40 UltraPlus platform the lane instantiates ``ceil(width / 16)`` SB_SPRAM256KA side by
side (a word's bits are packed into their 16-bit words, low bits first); on any other
platform, and in simulation, it is a ``lib.memory.Memory`` without ``init`` (all zeros),
so simulation shows the same "empty until loaded" behaviour.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.params import check_int

__all__ = ["SPRAM_DEPTH", "SPRAM_WIDTH", "SPRAMLane", "is_up5k"]

SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16


def is_up5k(platform) -> bool:
    """True for an iCE40 UltraPlus platform (which has SB_SPRAM256KA)."""
    device = getattr(platform, "device", None)
    return isinstance(device, str) and device.upper().startswith("ICE40UP")


class SPRAMLane(wiring.Component):
    """A single-port memory of ``depth`` words of ``shape`` with a one-cycle read.

    Ports: ``addr``; ``rd_en`` reads ``addr`` (``rd_data`` valid the next cycle and held
    while ``rd_en`` is low); ``wr_en`` writes ``wr_data`` at ``addr`` (a write cycle is not a
    read cycle). ``depth`` is at most 16384.
    """

    def __init__(self, *, shape, depth: int):
        self._depth = check_int("SPRAM depth", depth, 1, SPRAM_DEPTH)
        self._shape = shape
        super().__init__(
            {
                "addr": In(range(self._depth)),
                "rd_en": In(1),
                "rd_data": Out(shape),
                "wr_en": In(1),
                "wr_data": In(shape),
            }
        )

    @property
    def depth(self) -> int:
        """The number of words."""
        return self._depth

    def elaborate(self, platform):
        m = Module()
        if not is_up5k(platform):
            m.submodules.mem = mem = memory.Memory(shape=self._shape, depth=self._depth, init=[])
            rp = mem.read_port()
            wp = mem.write_port()
            m.d.comb += [
                rp.addr.eq(self.addr),
                rp.en.eq(self.rd_en & ~self.wr_en),
                self.rd_data.eq(rp.data),
                wp.addr.eq(self.addr),
                wp.data.eq(self.wr_data),
                wp.en.eq(self.wr_en),
            ]
            return m
        # SB_SPRAM256KA reads every enabled cycle; keeping the last read address while
        # rd_en is low keeps DATAOUT stable.
        held = Signal(range(self._depth))
        with m.If(self.rd_en & ~self.wr_en):
            m.d.sync += held.eq(self.addr)
        addr = Signal(14)
        m.d.comb += addr.eq(Mux(self.wr_en | self.rd_en, self.addr, held))
        width = len(self.wr_data.as_value())
        out = []
        for k in range(0, width, SPRAM_WIDTH):
            n = min(SPRAM_WIDTH, width - k)
            dout = Signal(SPRAM_WIDTH, name=f"dout{k // SPRAM_WIDTH}")
            din = Signal(SPRAM_WIDTH, name=f"din{k // SPRAM_WIDTH}")
            m.d.comb += din.eq(self.wr_data.as_value()[k : k + n])
            m.submodules[f"spram{k // SPRAM_WIDTH}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=addr,
                i_DATAIN=din,
                i_MASKWREN=Const(0b1111, 4),
                i_WREN=self.wr_en,
                i_CHIPSELECT=Const(1, 1),
                i_CLOCK=ClockSignal(),
                i_STANDBY=Const(0, 1),
                i_SLEEP=Const(0, 1),
                i_POWEROFF=Const(1, 1),  # active low
                o_DATAOUT=dout,
            )
            out.append(dout[:n])
        m.d.comb += self.rd_data.eq(Cat(out))
        return m
