"""The board's record of its tables: valid or not, whose (the tables hash), and the load in
progress over the link (its CRC and word count), as :mod:`~spikelut.hdl.hostlink.wire`
specifies under "Tables"."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.crc import INIT as CRC_INIT
from spikelut.hdl.crc import crc16_next
from spikelut.hdl.hostlink.params import LinkParams

__all__ = ["TablesState", "tables_state_control"]


def tables_state_control() -> wiring.Signature:
    """How the command executor drives a :class:`TablesState` (the executor's side), all
    strobes: ``load_start`` (a LOAD_TABLES payload follows), ``load_done`` (its ``count``
    words are written), ``begin`` (a LOAD_TABLES of count 0: a new load), ``commit_start``
    (a COMMIT_TABLES payload follows), ``commit_apply`` (its bytes are in: take the
    verdict); back: ``valid`` (the tables are valid) and ``commit_ok`` (the commit's bytes
    check out)."""
    return wiring.Signature(
        {
            "load_start": Out(1),
            "load_done": Out(1),
            "count": Out(16),
            "begin": Out(1),
            "commit_start": Out(1),
            "commit_apply": Out(1),
            "valid": In(1),
            "commit_ok": In(1),
        }
    )


class TablesState(wiring.Component):
    """``valid`` and ``hash`` (the tables hash, first byte lowest; zero when not valid), and
    the link's load in progress.

    ``take``/``byte``: the bytes of a LOAD_TABLES or COMMIT_TABLES payload as the executor
    reads them (a LOAD_TABLES payload enters the load's CRC only once its words are written:
    ``load_done``); ``set``/``set_hash``: a boot load passed, with that hash. At reset the
    tables are valid with the model hash when ``params.tables_at_reset``.
    """

    def __init__(self, params: LinkParams):
        self._p = params
        bits = 8 * params.hash_bytes
        super().__init__(
            {
                "control": In(tables_state_control()),
                "take": In(1),
                "byte": In(8),
                "set": In(1),
                "set_hash": In(bits),
                "valid": Out(1, init=int(params.tables_at_reset)),
                "hash": Out(bits, init=self._reset_hash()),
            }
        )

    def _reset_hash(self) -> int:
        p = self._p
        return int.from_bytes(p.model_hash, "little") if p.tables_at_reset else 0

    def elaborate(self, platform):
        m = Module()
        p, ctl = self._p, self.control
        n_hash = p.hash_bytes
        fresh = Signal(init=1)  # the next LOAD_TABLES with words starts a new load
        load_crc = Signal(16, init=CRC_INIT)  # the CRC of the load's payloads so far
        words = Signal(32)  # words the load wrote
        crc = Signal(16)  # the CRC of the frame being read
        committing = Signal()
        candidate = Signal(8 * n_hash)  # the commit's hash, shifted in from the top
        cidx = Signal(range(n_hash + 3))
        m.d.comb += [
            ctl.valid.eq(self.valid),
            ctl.commit_ok.eq((crc == 0) & (words == p.table_words)),
        ]
        with m.If(self.take):
            m.d.sync += crc.eq(crc16_next(crc, self.byte))
            with m.If(committing & (cidx < n_hash)):
                m.d.sync += [candidate.eq(Cat(candidate[8:], self.byte)), cidx.eq(cidx + 1)]
        with m.If(ctl.load_start):
            m.d.sync += [crc.eq(Mux(fresh, CRC_INIT, load_crc)), committing.eq(0)]
        with m.If(ctl.commit_start):
            m.d.sync += [crc.eq(load_crc), committing.eq(1), cidx.eq(0)]

        def invalidate():
            m.d.sync += [self.valid.eq(0), self.hash.eq(0), fresh.eq(0)]

        with m.If(ctl.load_done):
            invalidate()
            m.d.sync += [load_crc.eq(crc), words.eq(Mux(fresh, 0, words) + ctl.count)]
        with m.If(ctl.begin):
            invalidate()
            m.d.sync += [load_crc.eq(CRC_INIT), words.eq(0)]
        with m.If(ctl.commit_apply):
            m.d.sync += [
                self.valid.eq(ctl.commit_ok),
                self.hash.eq(Mux(ctl.commit_ok, candidate, 0)),
                fresh.eq(1),
                committing.eq(0),
            ]
        with m.If(self.set):
            m.d.sync += [self.valid.eq(1), self.hash.eq(self.set_hash), fresh.eq(1)]
        return m
