"""A free-running counter with enable: the smoke-test design and a building block."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.params import check_int


class Counter(wiring.Component):
    """Counts clock cycles while ``en`` is high, wrapping at ``2**width``.

    ``count`` holds the number of enabled cycles so far, modulo ``2**width``; ``wrap`` is
    high in the cycle the counter wraps from all-ones to zero.
    """

    def __init__(self, *, width: int):
        self._width = check_int("width", width, 1, 64)
        super().__init__({"en": In(1), "count": Out(self._width), "wrap": Out(1)})

    @property
    def width(self) -> int:
        """Width of ``count`` in bits."""
        return self._width

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        m.d.comb += self.wrap.eq(self.en & (self.count == (1 << self._width) - 1))
        return m
