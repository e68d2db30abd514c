"""The board top: UART host link, network core, table loading at boot, status LEDs, clocking.

:class:`BoardCore` is the whole design with flat pins (UART ``rx``/``tx``, SPI flash ``sck``,
``cs_n``, ``copi``, ``cipo``, ``leds``) in the ``sync`` domain; simulation uses it as is.
:class:`BoardTop` puts it on an amaranth-boards platform: board oscillator, or a PLL when the
requested clock differs from it, and the pins of the board's UART, configuration flash and LEDs.

Tables: a memory-backed layer is written through the link's table space
(:mod:`spikelut.boards.tables`) by LOAD_TABLES, and SPRAM layers are also loaded at boot by
:class:`BootLoader` from the configuration flash at :data:`~spikelut.boards.flash_image.TABLE_OFFSET`
(format: :mod:`spikelut.boards.flash_image`). Until the boot loader is done the core takes no
input (requests wait); if it rejects the flash area the error LED lights and the tables stay
as they are.

LEDs: 0 tables ready (boot load checked and done, or nothing to load); 1 error (the boot loader
rejected the flash area, or the link answered ERROR recently); 2 link busy (stretched).
"""

import struct

from amaranth.build.res import ResourceError
from amaranth.hdl import Array, Cat, ClockDomain, ClockSignal, Const, Elaboratable, Module, Signal
from amaranth.lib import data, io, stream, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from spikelut.hdl.crc import INIT as CRC_INIT
from spikelut.hdl.crc import crc16_next
from spikelut.hdl.hostlink import HostLink
from spikelut.hdl.spiflash import SPIFlashReader
from spikelut.hdl.uart import UARTReceiver, UARTTransmitter

from .flash_image import HEADER_SIZE, MAGIC, TABLE_OFFSET, boot_layers, payload_length
from .pll import PLLConfig, ecp5_pll, ice40_pll, pll_instance
from .tables import TableSpace, table_space

__all__ = ["BoardCore", "BoardTop", "BootLoader", "TableRouter", "choose_pll", "write_layout"]


def write_layout(space: TableSpace) -> data.StructLayout:
    """Payload of a table write on the link side: ``layer``, host ``addr``, one chunk ``data``."""
    return data.StructLayout(
        {"layer": range(space.n_layers), "addr": space.addr_bits, "data": space.chunk_bits}
    )


def _in_port(component, name):
    return component.signature.members[name].signature.flip()


class TableRouter(wiring.Component):
    """Turns chunk writes (``i_table``, :func:`write_layout`) into bank word writes on
    ``w{k}_stream`` for every memory-backed layer ``k`` of ``net``.

    Chunks before a word's last slot are held; the last slot writes the word. Writes to a
    layer without table memory, or outside a lane's depth, are dropped.
    """

    def __init__(self, net, space: TableSpace):
        self._space = space
        ports = {"i_table": In(stream.Signature(write_layout(space)))}
        for lt in space.layers:
            ports[f"w{lt.layer}_stream"] = Out(_in_port(net, f"w{lt.layer}_stream"))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        sp = self._space
        i = self.i_table
        max_slots = max([1, *(lt.slots for lt in sp.layers)])
        held = [Signal(sp.chunk_bits, name=f"slot{s}") for s in range(max_slots - 1)]
        m.d.comb += i.ready.eq(1)  # default: drop
        with m.Switch(i.payload.layer):
            for lt in sp.layers:
                with m.Case(lt.layer):
                    w = getattr(self, f"w{lt.layer}_stream")
                    sb, ab, lb = lt.slot_bits, lt.addr_bits, lt.lane_bits
                    addr = i.payload.addr
                    waddr = addr[sb : sb + ab]
                    lane = addr[sb + ab : sb + ab + lb]
                    word = Cat(*held[: lt.slots - 1], i.payload.data)[: lt.word_bits]
                    m.d.comb += [
                        w.payload.lane.eq(lane),
                        w.payload.addr.eq(waddr),
                        w.payload.data.eq(word),
                    ]
                    in_range = (waddr < lt.depth) & (lane < lt.lanes)
                    if sb + ab + lb < sp.addr_bits:
                        in_range &= addr[sb + ab + lb :] == 0
                    last = Const(1) if sb == 0 else (addr[:sb] == lt.slots - 1)
                    if sb:
                        with m.If(i.valid & ~last), m.Switch(addr[:sb]):
                            for s in range(lt.slots - 1):
                                with m.Case(s):
                                    m.d.sync += held[s].eq(i.payload.data)
                    with m.If(last & in_range):
                        m.d.comb += [w.valid.eq(i.valid), i.ready.eq(w.ready)]
        return m


class BootLoader(wiring.Component):
    """Copies the SPRAM tables from the SPI flash at ``offset`` into the table space, once.

    Reads the table header and payload a first time to check the magic, the payload length
    (fixed by the design) and the payload's CRC; only if all check out reads the payload again
    and issues its chunks on ``o_table``. ``done`` rises when finished, with ``ok`` (loaded) or
    ``failed`` (rejected). SPI pins as :class:`~spikelut.hdl.spiflash.SPIFlashReader`.
    """

    def __init__(self, space: TableSpace, *, offset: int = TABLE_OFFSET, half_period: int = 1):
        self._space = space
        self._layers = [space.layer(k) for k in boot_layers(space)]
        if not self._layers:
            raise ValueError("the network has no SPRAM layer; there is nothing to load at boot")
        self._offset = offset
        self._half = half_period
        self._length = payload_length(space)
        super().__init__(
            {
                "o_table": Out(stream.Signature(write_layout(space))),
                "done": Out(1),
                "ok": Out(1),
                "failed": Out(1),
                "sck": Out(1),
                "cs_n": Out(1, init=1),
                "copi": Out(1),
                "cipo": In(1, init=1),
            }
        )

    @property
    def payload_length(self) -> int:
        """Bytes of table payload the loader expects."""
        return self._length

    def elaborate(self, platform):
        m = Module()
        sp, total = self._space, self._length
        m.submodules.reader = rd = SPIFlashReader(half_period=self._half)
        m.d.comb += [
            self.sck.eq(rd.sck),
            self.cs_n.eq(rd.cs_n),
            self.copi.eq(rd.copi),
            rd.cipo.eq(self.cipo),
        ]
        expect = Array(Const(b, 8) for b in MAGIC + struct.pack("<I", total))
        byte = rd.o_stream.payload
        took = rd.o_stream.valid & rd.o_stream.ready
        count = Signal(range(HEADER_SIZE + total + 1))
        crc = Signal(16, init=CRC_INIT)
        want = Signal(16)
        bad = Signal()
        cb = sp.chunk_bytes
        chunk = Signal(cb * 8)
        byte_idx = Signal(range(cb + 1))
        n_chunks = total // cb
        chunks_left = Signal(range(n_chunks + 1))
        li = Signal(range(len(self._layers) + 1))
        lane = Signal(range(max(lt.lanes for lt in self._layers) + 1))
        waddr = Signal(range(max(lt.depth for lt in self._layers) + 1))
        slot = Signal(range(max(lt.slots for lt in self._layers) + 1))

        out = self.o_table
        m.d.comb += [out.payload.data.eq(chunk[: sp.chunk_bits])]
        with m.Switch(li):
            for n, lt in enumerate(self._layers):
                with m.Case(n):
                    m.d.comb += [
                        out.payload.layer.eq(lt.layer),
                        out.payload.addr.eq(
                            Cat(slot[: lt.slot_bits], waddr[: lt.addr_bits], lane[: lt.lane_bits])
                        ),
                    ]

        def advance():
            """Next (layer, lane, word, slot) in payload order."""
            with m.Switch(li):
                for n, lt in enumerate(self._layers):
                    with m.Case(n):
                        with m.If(slot != lt.slots - 1):
                            m.d.sync += slot.eq(slot + 1)
                        with m.Else():
                            m.d.sync += slot.eq(0)
                            with m.If(waddr != lt.depth - 1):
                                m.d.sync += waddr.eq(waddr + 1)
                            with m.Else():
                                m.d.sync += waddr.eq(0)
                                with m.If(lane != lt.lanes - 1):
                                    m.d.sync += lane.eq(lane + 1)
                                with m.Else():
                                    m.d.sync += [lane.eq(0), li.eq(li + 1)]

        with m.FSM():
            with m.State("VERIFY_CMD"):
                m.d.comb += [
                    rd.i_cmd.valid.eq(1),
                    rd.i_cmd.payload.addr.eq(self._offset),
                    rd.i_cmd.payload.length.eq(HEADER_SIZE + total),
                ]
                m.d.sync += [count.eq(0), crc.eq(CRC_INIT), bad.eq(0)]
                with m.If(rd.i_cmd.ready):
                    m.next = "VERIFY"
            with m.State("VERIFY"):
                m.d.comb += rd.o_stream.ready.eq(1)
                with m.If(took):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count < 8), m.If(byte != expect[count[:3]]):
                        m.d.sync += bad.eq(1)
                    with m.Elif(count == 8):
                        m.d.sync += want[8:].eq(byte)
                    with m.Elif(count == 9):
                        m.d.sync += want[:8].eq(byte)
                    with m.Elif(count >= HEADER_SIZE):
                        m.d.sync += crc.eq(crc16_next(crc, byte))
                    with m.If(count == HEADER_SIZE + total - 1):
                        m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(bad | (crc != want)):
                    m.next = "FAILED"
                with m.Else():
                    m.next = "LOAD_CMD"
            with m.State("LOAD_CMD"):
                m.d.comb += [
                    rd.i_cmd.valid.eq(1),
                    rd.i_cmd.payload.addr.eq(self._offset + HEADER_SIZE),
                    rd.i_cmd.payload.length.eq(total),
                ]
                m.d.sync += [
                    chunks_left.eq(n_chunks),
                    byte_idx.eq(0),
                    li.eq(0),
                    lane.eq(0),
                    waddr.eq(0),
                    slot.eq(0),
                ]
                with m.If(rd.i_cmd.ready):
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += rd.o_stream.ready.eq(1)
                with m.If(took):
                    m.d.sync += chunk.eq(Cat(chunk[8:], byte))  # little-endian: low byte first
                    with m.If(byte_idx == cb - 1):
                        m.d.sync += byte_idx.eq(0)
                        m.next = "EMIT"
                    with m.Else():
                        m.d.sync += byte_idx.eq(byte_idx + 1)
            with m.State("EMIT"):
                m.d.comb += out.valid.eq(1)
                with m.If(out.ready):
                    advance()
                    m.d.sync += chunks_left.eq(chunks_left - 1)
                    with m.If(chunks_left == 1):
                        m.next = "LOADED"
                    with m.Else():
                        m.next = "LOAD"
            with m.State("LOADED"):
                m.d.comb += [self.done.eq(1), self.ok.eq(1)]
            with m.State("FAILED"):
                m.d.comb += [self.done.eq(1), self.failed.eq(1)]
        return m


class BoardCore(wiring.Component):
    """UART + :class:`~spikelut.hdl.hostlink.HostLink` + network core + boot loader + LEDs.

    Parameters: ``net`` (a classifier core ending in argmax: :class:`~spikelut.hdl.layer.Network`
    or :class:`~spikelut.hdl.serial_core.SerialNetwork`; results are the class index); ``clock_hz`` (the clock the design runs at, reported by
    IDENTIFY); ``divisor`` (clock cycles per UART bit); ``model_hash`` (IDENTIFY's hash);
    ``boot_load`` (load SPRAM layers from flash at boot; default: when there are any);
    ``flash_offset``; ``max_payload``; ``timeout_cycles`` (mid-frame silence that abandons a
    frame; default 50 ms, at least 256 byte times); ``spi_half_period``.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    sck: Out(1)
    cs_n: Out(1, init=1)
    copi: Out(1)
    cipo: In(1, init=1)
    leds: Out(3)

    def __init__(
        self,
        net,
        *,
        clock_hz: int,
        divisor: int,
        model_hash: bytes,
        boot_load: bool | None = None,
        flash_offset: int = TABLE_OFFSET,
        max_payload: int = 1024,
        timeout_cycles: int | None = None,
        spi_half_period: int = 1,
    ):
        self._net = net
        self._space = table_space(net)
        has_spram = bool(boot_layers(self._space))
        self._boot = has_spram if boot_load is None else bool(boot_load) and has_spram
        self._divisor = divisor
        if timeout_cycles is None:
            timeout_cycles = max(int(clock_hz) // 20, divisor * 10 * 256)
        d = net.layers[0].in_dim
        in_width = net.layers[0].in_width
        self._n_classes = net.layers[-1].out_dim
        self._link_params = dict(
            in_width=in_width,
            n_inputs=d,
            result_width=max(1, (self._n_classes - 1).bit_length()),
            table_word_bits=self._space.chunk_bits,
            table_addr_bits=self._space.addr_bits,
            n_layers=len(net.layers),
            clock_hz=int(clock_hz),
            model_hash=bytes(model_hash),
            max_payload=max_payload,
            timeout_cycles=timeout_cycles,
        )
        self._flash_offset = flash_offset
        self._spi_half = spi_half_period
        self._clock_hz = int(clock_hz)
        super().__init__()

    @property
    def space(self) -> TableSpace:
        """The table space LOAD_TABLES and the boot loader write."""
        return self._space

    @property
    def boot_load(self) -> bool:
        """True when the design loads SPRAM tables from flash at boot."""
        return self._boot

    @property
    def link_params(self) -> dict:
        """The :class:`~spikelut.hdl.hostlink.HostLink` parameters (what IDENTIFY reports)."""
        return dict(self._link_params)

    @property
    def net(self):
        """The network core."""
        return self._net

    def elaborate(self, platform):
        m = Module()
        net = self._net
        m.submodules.net = net
        m.submodules.link = link = HostLink(**self._link_params)
        m.submodules.uart_rx = urx = UARTReceiver(divisor=self._divisor)
        m.submodules.uart_tx = utx = UARTTransmitter(divisor=self._divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        wiring.connect(m, urx.o_stream, link.uart_rx)
        wiring.connect(m, link.uart_tx, utx.i_stream)
        m.submodules.router = router = TableRouter(net, self._space)
        for lt in self._space.layers:
            name = f"w{lt.layer}_stream"
            wiring.connect(m, getattr(router, name), getattr(net, name))

        ready = Signal()  # boot done: the core takes inputs and link table writes
        failed = Signal()
        if self._boot:
            m.submodules.boot = boot = BootLoader(
                self._space, offset=self._flash_offset, half_period=self._spi_half
            )
            m.d.comb += [
                self.sck.eq(boot.sck),
                self.cs_n.eq(boot.cs_n),
                self.copi.eq(boot.copi),
                boot.cipo.eq(self.cipo),
                ready.eq(boot.done),
                failed.eq(boot.failed),
            ]
            src_valid = Signal()
            m.d.comb += src_valid.eq(boot.o_table.valid)
            with m.If(ready):
                m.d.comb += [
                    router.i_table.valid.eq(link.o_table.valid),
                    router.i_table.payload.eq(link.o_table.payload),
                    link.o_table.ready.eq(router.i_table.ready),
                ]
            with m.Else():
                m.d.comb += [
                    router.i_table.valid.eq(boot.o_table.valid),
                    router.i_table.payload.eq(boot.o_table.payload),
                    boot.o_table.ready.eq(router.i_table.ready),
                ]
        else:
            m.d.comb += ready.eq(1)
            wiring.connect(m, link.o_table, router.i_table)

        m.d.comb += [
            net.i_stream.payload.eq(link.o_vector.payload),
            net.i_stream.valid.eq(link.o_vector.valid & ready),
            link.o_vector.ready.eq(net.i_stream.ready & ready),
            link.i_result.payload.eq(net.o_stream.payload.index),
            link.i_result.valid.eq(net.o_stream.valid),
            net.o_stream.ready.eq(link.i_result.ready),
        ]

        # LEDs: stretch link errors and activity so they are visible
        stretch = max(2, self._clock_hz // 10)
        err_t = Signal(range(stretch + 1))
        busy_t = Signal(range(stretch + 1))
        with m.If(link.error):
            m.d.sync += err_t.eq(stretch)
        with m.Elif(err_t != 0):
            m.d.sync += err_t.eq(err_t - 1)
        with m.If(link.busy):
            m.d.sync += busy_t.eq(stretch)
        with m.Elif(busy_t != 0):
            m.d.sync += busy_t.eq(busy_t - 1)
        m.d.comb += [
            self.leds[0].eq(ready & ~failed),
            self.leds[1].eq(failed | (err_t != 0)),
            self.leds[2].eq(busy_t != 0),
        ]
        return m


def choose_pll(spec, freq_mhz: float | None) -> "PLLConfig | None":
    """The PLL setting for ``freq_mhz`` on board ``spec`` (None: the oscillator is used).

    Raises ValueError when no PLL setting comes within 0.5 % or the board's clock cannot
    feed a PLL.
    """
    base = spec.clock_hz
    if freq_mhz is None or abs(freq_mhz * 1e6 - base) < 1:
        return None
    if spec.platform().default_clk == "SB_HFOSC":
        raise ValueError(
            f"{spec.name} runs from the internal oscillator, which cannot feed a PLL here; "
            f"drop --freq (the clock is {base / 1e6:g} MHz)"
        )
    want = freq_mhz * 1e6
    cfg = ice40_pll(base, want) if spec.family == "ice40" else ecp5_pll(base, want)
    if abs(cfg.out_hz - want) > 0.005 * want:
        raise ValueError(
            f"the closest PLL clock to {freq_mhz:g} MHz from {base / 1e6:g} MHz is "
            f"{cfg.out_mhz:.3f} MHz; ask for that"
        )
    return cfg


class BoardTop(Elaboratable):
    """:class:`BoardCore` on an amaranth-boards platform, clocked by the board oscillator or
    by ``pll`` (a :class:`~spikelut.boards.pll.PLLConfig`) with a clock constraint on its
    output; reset is held until the PLL locks."""

    def __init__(self, core: BoardCore, *, pll: PLLConfig | None = None):
        self.core = core
        self.pll = pll

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        if self.pll is not None:
            m.domains.sync = ClockDomain("sync")
            clk = Signal()
            lock = Signal()
            pad = platform.request(platform.default_clk, 0, dir="-")
            if self.pll.family == "ice40":
                m.submodules.pll = pll_instance(self.pll, clk_in=pad.io, clk_out=clk, lock=lock)
            else:
                m.submodules.clk_buf = buf = io.Buffer("i", pad)
                m.submodules.pll = pll_instance(self.pll, clk_in=buf.i, clk_out=clk, lock=lock)
            m.d.comb += ClockSignal("sync").eq(clk)
            m.submodules.reset_sync = ResetSynchronizer(~lock, domain="sync")
            platform.add_clock_constraint(clk, self.pll.out_hz)

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.d.comb += [tx.o.eq(core.tx), core.rx.eq(rx.i)]

        if core.boot_load:
            flash = platform.request("spi_flash_1x", 0, dir="-")
            m.submodules.flash_cs = cs = io.Buffer("o", flash.cs)
            m.submodules.flash_clk = sck = io.Buffer("o", flash.clk)
            m.submodules.flash_copi = copi = io.Buffer("o", flash.copi)
            m.submodules.flash_cipo = cipo = io.Buffer("i", flash.cipo)
            m.d.comb += [
                cs.o.eq(~core.cs_n),  # the resource's cs is active high (PinsN)
                sck.o.eq(core.sck),
                copi.o.eq(core.copi),
                core.cipo.eq(cipo.i),
            ]
            for name in ("wp", "hold"):
                if hasattr(flash, name):
                    m.submodules[f"flash_{name}"] = b = io.Buffer("o", getattr(flash, name))
                    m.d.comb += b.o.eq(0)  # deasserted (the pins are active low)

        for n in range(3):
            try:
                led = platform.request("led", n, dir="-")
            except ResourceError:
                break
            m.submodules[f"led{n}"] = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(core.leds[n])
        return m
