"""The host link's activity counters, read by READ_COUNTERS."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.hostlink.payload import COUNTER_BITS

__all__ = ["LinkCounters"]


class LinkCounters(wiring.Component):
    """Counts good request frames (``frame``), ERROR replies (``error``), inferences
    (``inference``) and compute cycles (``cycle``): each input adds one in a cycle it is high.

    ``value``: the counters in the COUNTERS payload's order
    (:class:`~spikelut.hdl.hostlink.wire.Counters`), 32 bits each and 48 for the cycles;
    they wrap.
    """

    frame: In(1)
    error: In(1)
    inference: In(1)
    cycle: In(1)
    value: Out(COUNTER_BITS)

    def elaborate(self, platform):
        m = Module()
        inferences = Signal(32)
        errors = Signal(32)
        frames = Signal(32)
        cycles = Signal(48)
        for counter, inc in (
            (inferences, self.inference),
            (errors, self.error),
            (frames, self.frame),
            (cycles, self.cycle),
        ):
            with m.If(inc):
                m.d.sync += counter.eq(counter + 1)
        m.d.comb += self.value.eq(Cat(inferences, errors, frames, cycles))
        return m
