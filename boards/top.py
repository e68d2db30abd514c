"""The board top: UART host link, network core, table loading at boot, status LEDs, clocking.

The core is a classifier (INFER, INFER_BATCH) or a language model, an
:class:`~spikelut.hdl.recurrent.RNNCore` or a
:class:`~spikelut.hdl.transformer.TransformerCore` (GENERATE, SET_SAMPLER); the host link, the table
space, the boot loader and the LEDs are the same for both
(:mod:`spikelut.hdl.hostlink.wire`).

:class:`BoardCore` is the whole design with its pins as ports (UART ``rx``/``tx``, the SPI
flash's ``flash``, :class:`~spikelut.hdl.spiflash.FlashPinSignature`, whose Verilog ports are
``flash__sck``, ``flash__cs_n``, ``flash__copi``, ``flash__cipo``; ``leds``) in the ``sync``
domain; simulation uses it as is.
:class:`BoardTop` puts it on an amaranth-boards platform: board oscillator, or a PLL when the
requested clock differs from it, and the pins of the board's UART, configuration flash and LEDs.

Tables (the contract is :mod:`spikelut.hdl.hostlink.wire`, "Tables"): a memory-backed layer
is written through the link's table space (:mod:`spikelut.boards.tables`) by LOAD_TABLES and
made valid by COMMIT_TABLES; in a design with SPRAM layers, :class:`BootLoader` loads every
memory-backed layer at boot from the configuration flash at
:data:`~spikelut.boards.flash_image.TABLE_OFFSET` (format: :mod:`spikelut.boards.flash_image`)
and the tables are valid, with the area's model hash, only if it passed its checks. Until the
boot loader is done the link takes no request (requests wait). A design without SPRAM starts
with valid tables, the bitstream's.

LEDs: 0 tables valid; 1 error (the boot loader rejected the flash area, or the link answered
ERROR recently); 2 link busy (stretched).
"""

import dataclasses
import hashlib
import struct

from amaranth.build.res import ResourceError
from amaranth.hdl import (
    Array,
    Cat,
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Module,
    Signal,
)
from amaranth.lib import data, io, stream, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from spikelut.boards.flash_image import (
    AREA_HASH_BYTES,
    CRC_BYTES,
    HEADER_SIZE,
    MAGIC,
    TABLE_OFFSET,
    area_length,
    boot_layers,
    payload_length,
)
from spikelut.boards.pll import PLLConfig, family_pll, pll_instance
from spikelut.boards.tables import TableSpace, lm_table_layers, lm_write_ports, table_space
from spikelut.hdl.crc import INIT as CRC_INIT
from spikelut.hdl.crc import crc16_next
from spikelut.hdl.hostlink.link import HostLink
from spikelut.hdl.hostlink.params import LinkParams
from spikelut.hdl.hostlink.wire import SHAPE_HASH_BYTES, ModelKind
from spikelut.hdl.params import check_int
from spikelut.hdl.recurrent import LanguageModelCore
from spikelut.hdl.spiflash import FlashPinSignature, SPIFlashReader
from spikelut.hdl.uart import UARTReceiver, UARTTransmitter, check_divisor

__all__ = ["BoardCore", "BoardTop", "BootLoader", "TableRouter", "choose_pll", "chunk_write_layout"]


def chunk_write_layout(space: TableSpace) -> data.StructLayout:
    """Payload of a table write on the link side: ``layer``, host ``addr``, one chunk ``data``."""
    return data.StructLayout(
        {"layer": range(space.n_layers), "addr": space.addr_bits, "data": space.chunk_bits}
    )


class TableRouter(wiring.Component):
    """Turns chunk writes (``i_table``, :func:`chunk_write_layout`) into bank word writes on
    ``w{k}_stream`` for every memory-backed layer ``k`` of ``space``; ``signatures``: each
    such layer's write port signature (``{lane, addr, data}``,
    :func:`~spikelut.hdl.storage.write_layout`), by layer.

    Chunks before a word's last slot are held; the last slot writes the word. Writes to a
    layer without table memory, or outside a lane's depth, are dropped.
    """

    def __init__(self, signatures: dict, space: TableSpace):
        self._space = space
        ports = {"i_table": In(stream.Signature(chunk_write_layout(space)))}
        for lt in space.layers:
            ports[f"w{lt.layer}_stream"] = Out(signatures[lt.layer])
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


def check_boot(space: TableSpace, *, offset: int, half_period: int) -> tuple[list, int, int]:
    """The boot loader's parameters, checked: ``(layers to load, offset, half_period)``.

    ``ValueError`` when ``space`` has no SPRAM layer (nothing to load), when the table area
    at ``offset`` does not fit the flash's 24-bit addresses, or for a bad ``half_period``.
    """
    layers = [space.layer(k) for k in boot_layers(space)]
    if not layers:
        raise ValueError("the network has no SPRAM layer; there is nothing to load at boot")
    end = (1 << 24) - area_length(space)
    return (
        layers,
        check_int("flash offset", offset, 0, end),
        check_int("spi half_period", half_period, 1),
    )


class _ChunkOrder:
    """Where the payload's next chunk goes: boot layer ``li``, lane, word address and slot,
    counted in payload order (:mod:`spikelut.boards.flash_image`)."""

    def __init__(self, layers):
        self.layers = layers
        self.li = Signal(range(len(layers) + 1))
        self.lane = Signal(range(max(lt.lanes for lt in layers) + 1))
        self.waddr = Signal(range(max(lt.depth for lt in layers) + 1))
        self.slot = Signal(range(max(lt.slots for lt in layers) + 1))

    def restart(self) -> list:
        """Assignments back to the first chunk."""
        return [self.li.eq(0), self.lane.eq(0), self.waddr.eq(0), self.slot.eq(0)]

    def drive(self, m, payload) -> None:
        """The current chunk's layer and host address on ``payload``."""
        with m.Switch(self.li):
            for n, lt in enumerate(self.layers):
                with m.Case(n):
                    addr = Cat(
                        self.slot[: lt.slot_bits],
                        self.waddr[: lt.addr_bits],
                        self.lane[: lt.lane_bits],
                    )
                    m.d.comb += [payload.layer.eq(lt.layer), payload.addr.eq(addr)]

    def advance(self, m) -> None:
        """On to the next chunk."""
        with m.Switch(self.li):
            for n, lt in enumerate(self.layers):
                with m.Case(n):
                    self._next_slot(m, lt)

    def _next_slot(self, m, lt) -> None:
        with m.If(self.slot != lt.slots - 1):
            m.d.sync += self.slot.eq(self.slot + 1)
        with m.Else():
            m.d.sync += self.slot.eq(0)
            self._next_word(m, lt)

    def _next_word(self, m, lt) -> None:
        with m.If(self.waddr != lt.depth - 1):
            m.d.sync += self.waddr.eq(self.waddr + 1)
        with m.Else():
            m.d.sync += self.waddr.eq(0)
            with m.If(self.lane != lt.lanes - 1):
                m.d.sync += self.lane.eq(self.lane + 1)
            with m.Else():
                m.d.sync += [self.lane.eq(0), self.li.eq(self.li + 1)]


class _AreaCheck:
    """The table area's bytes as they are read: the header's magic, payload length and shape
    fingerprint must be the design's; the model hash is kept; the CRC over everything after
    the magic must come out 0."""

    def __init__(self, total: int, shape_hash: bytes):
        expect = MAGIC + struct.pack("<I", total) + shape_hash  # the first 16 bytes
        self.expect = Array(Const(b, 8) for b in expect)
        self.size = HEADER_SIZE + total + CRC_BYTES
        self.count = Signal(range(self.size + 1))  # bytes taken
        self.crc = Signal(16, init=CRC_INIT)
        self.hash = Signal(8 * AREA_HASH_BYTES)  # first byte lowest
        self.bad = Signal()  # the magic, the length or the fingerprint is wrong
        self.last = self.count == self.size - 1
        self.in_payload = (self.count >= HEADER_SIZE) & (self.count < HEADER_SIZE + total)
        self.passed = ~self.bad & (self.crc == 0)

    def restart(self) -> list:
        """Assignments back to the area's first byte."""
        return [self.count.eq(0), self.crc.eq(CRC_INIT), self.bad.eq(0)]

    def take(self, m, byte) -> None:
        """Check the area's next byte, ``byte``."""
        count = self.count
        m.d.sync += count.eq(count + 1)
        with m.If(count < len(self.expect)), m.If(byte != self.expect[count[:4]]):
            m.d.sync += self.bad.eq(1)
        with m.Elif(count < HEADER_SIZE):
            m.d.sync += self.hash.eq(Cat(self.hash[8:], byte))
        with m.If(count >= len(MAGIC)):
            m.d.sync += self.crc.eq(crc16_next(self.crc, byte))


class BootLoader(wiring.Component):
    """Copies the tables of every boot layer from the SPI flash at ``offset`` into the table
    space, once.

    Reads the table area once, issuing its payload's chunks on ``o_table`` as they arrive
    (none once the header is known to be wrong), and checks the magic, the payload length
    (fixed by the design), the shape fingerprint (``shape_hash``, the design's) and the CRC
    over length, fingerprint, model hash and payload. ``done`` rises when finished, with
    ``ok`` (all checked out: ``hash`` holds the area's model hash, first byte lowest) or
    ``failed`` (rejected; the tables may have been partly written). ``flash``: the SPI flash
    pins (:class:`~spikelut.hdl.spiflash.FlashPinSignature`). Parameters: :func:`check_boot`.
    """

    def __init__(
        self,
        space: TableSpace,
        *,
        shape_hash: bytes,
        offset: int = TABLE_OFFSET,
        half_period: int = 1,
    ):
        self._layers, self._offset, self._half = check_boot(
            space, offset=offset, half_period=half_period
        )
        self._shape = bytes(shape_hash)
        if len(self._shape) != SHAPE_HASH_BYTES:
            raise ValueError(f"shape_hash must be {SHAPE_HASH_BYTES} bytes")
        self._space = space
        self._length = payload_length(space)
        super().__init__(
            {
                "o_table": Out(stream.Signature(chunk_write_layout(space))),
                "done": Out(1),
                "ok": Out(1),
                "failed": Out(1),
                "hash": Out(8 * AREA_HASH_BYTES),
                "flash": Out(FlashPinSignature()),
            }
        )

    @property
    def payload_length(self) -> int:
        """Bytes of table payload the loader expects."""
        return self._length

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = rd = SPIFlashReader(half_period=self._half)
        wiring.connect(m, rd.flash, wiring.flipped(self.flash))
        area = _AreaCheck(self._length, self._shape)
        order = _ChunkOrder(self._layers)
        order.drive(m, self.o_table.payload)
        m.d.comb += self.hash.eq(area.hash)
        with m.FSM():
            with m.State("CMD"):
                m.d.sync += area.restart()
                m.d.sync += order.restart()
                self._read(m, rd.i_cmd, self._offset, area.size, "READ")
            self._read_states(m, rd.o_stream, area, order)
            with m.State("CHECK"):
                with m.If(area.passed):
                    m.next = "LOADED"
                with m.Else():
                    m.next = "FAILED"
            with m.State("LOADED"):
                m.d.comb += [self.done.eq(1), self.ok.eq(1)]
            with m.State("FAILED"):
                m.d.comb += [self.done.eq(1), self.failed.eq(1)]
        return m

    @staticmethod
    def _read(m, cmd, addr: int, length: int, then: str) -> None:
        """Ask the reader for ``length`` bytes from ``addr``; ``then`` once it took that."""
        m.d.comb += [cmd.valid.eq(1), cmd.payload.addr.eq(addr), cmd.payload.length.eq(length)]
        with m.If(cmd.ready):
            m.next = then

    def _read_states(self, m, bytes_in, area, order) -> None:
        """READ checks every byte and assembles the payload's chunks, little-endian; EMIT
        writes a chunk."""
        sp, out = self._space, self.o_table
        cb = sp.chunk_bytes
        chunk = Signal(cb * 8)
        byte_idx = Signal(range(cb + 1))
        m.d.comb += out.payload.data.eq(chunk[: sp.chunk_bits])
        with m.State("READ"):
            m.d.comb += bytes_in.ready.eq(1)
            with m.If(bytes_in.valid):
                area.take(m, bytes_in.payload)
                with m.If(area.in_payload):
                    m.d.sync += chunk.eq(Cat(chunk[8:], bytes_in.payload))
                    with m.If(byte_idx == cb - 1):
                        m.d.sync += byte_idx.eq(0)
                        with m.If(~area.bad):
                            m.next = "EMIT"
                    with m.Else():
                        m.d.sync += byte_idx.eq(byte_idx + 1)
                with m.If(area.last):
                    m.next = "CHECK"
        with m.State("EMIT"):
            m.d.comb += out.valid.eq(1)
            with m.If(out.ready):
                order.advance(m)
                m.next = "READ"


class BoardCore(wiring.Component):
    """UART + :class:`~spikelut.hdl.hostlink.link.HostLink` + network core + boot loader + LEDs.

    Parameters: ``net`` (a classifier core ending in argmax:
    :class:`~spikelut.hdl.layer.Network`, :class:`~spikelut.hdl.serial_core.SerialNetwork` or
    :class:`~spikelut.hdl.mac.MACCore`, whose results are the class index; or a language
    model, an :class:`~spikelut.hdl.recurrent.RNNCore` or a
    :class:`~spikelut.hdl.transformer.TransformerCore`, whose memories are the table-space
    layers of :func:`~spikelut.boards.tables.lm_table_layers`); ``clock_hz`` (the clock
    the design runs at, reported by IDENTIFY); ``divisor`` (clock cycles per UART bit);
    ``model_hash`` (the bitstream's model, 16 bytes when the design boots its tables);
    ``shape_hash`` (IDENTIFY's fingerprint of what the bitstream fixes, 8 bytes:
    :func:`spikelut.boards.design.shape_hash`; default, for a design whose tables cannot be
    loaded, one derived from ``model_hash``); ``boot_load`` (load the tables from flash at
    boot; default: when there are SPRAM layers); ``flash_offset``; ``max_payload`` (default
    :func:`~spikelut.hdl.hostlink.wire.default_max_payload` of the input vector);
    ``timeout_cycles`` (mid-frame silence that abandons a frame; default 50 ms, at least 256
    byte times); ``spi_half_period``. Every parameter is checked before anything is built.

    Pins: ``rx``, ``tx`` (the UART), ``flash``
    (:class:`~spikelut.hdl.spiflash.FlashPinSignature`), ``leds``.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    flash: Out(FlashPinSignature())
    leds: Out(3)

    def __init__(
        self,
        net,
        *,
        clock_hz: int,
        divisor: int,
        model_hash: bytes,
        shape_hash: bytes | None = None,
        boot_load: bool | None = None,
        flash_offset: int = TABLE_OFFSET,
        max_payload: int | None = None,
        timeout_cycles: int | None = None,
        spi_half_period: int = 1,
    ):
        self._net = net
        self._lm = isinstance(net, LanguageModelCore)
        layers = lm_table_layers(net) if self._lm else net.layers
        self._space = space = table_space(layers)
        has_spram = bool(boot_layers(space))
        self._boot = has_spram if boot_load is None else bool(boot_load) and has_spram
        if shape_hash is None:
            digest = hashlib.sha256(b"spikelut fixed tables" + bytes(model_hash)).digest()
            shape_hash = digest[:SHAPE_HASH_BYTES]
        self._divisor = check_divisor(divisor)
        self._clock_hz = check_int("clock_hz", int(clock_hz), 1)
        if timeout_cycles is None:
            timeout_cycles = max(self._clock_hz // 20, divisor * 10 * 256)
        if self._lm:
            face = dict(
                in_width=8,
                n_inputs=1,
                result_width=8,
                kind=ModelKind.LANGUAGE_MODEL,
                vocab=net.vocab,
                exp_entries=net.exp_entries,
            )
        else:
            first, last = net.layers[0], net.layers[-1]
            face = dict(
                in_width=first.in_width,
                n_inputs=first.in_dim,
                result_width=max(1, (last.out_dim - 1).bit_length()),
            )
        self._link = LinkParams(
            **face,
            table_word_bits=space.chunk_bits,
            table_addr_bits=space.addr_bits,
            n_layers=len(layers),
            clock_hz=self._clock_hz,
            model_hash=bytes(model_hash),
            shape_hash=shape_hash,
            table_words=sum(lt.lanes * lt.depth * lt.slots for lt in space.layers),
            tables_at_reset=not has_spram,
            max_payload=max_payload,
            timeout_cycles=timeout_cycles,
        )
        self._flash_offset, self._spi_half = flash_offset, spi_half_period
        if self._boot:
            check_boot(space, offset=flash_offset, half_period=spi_half_period)
            if len(self._link.model_hash) != AREA_HASH_BYTES:
                raise ValueError(
                    f"a design that boots its tables needs a {AREA_HASH_BYTES}-byte model hash"
                )
        super().__init__()

    @property
    def space(self) -> TableSpace:
        """The table space LOAD_TABLES and the boot loader write."""
        return self._space

    @property
    def model_hash(self) -> bytes:
        """The bitstream's model hash."""
        return self._link.model_hash

    @property
    def shape_hash(self) -> bytes:
        """The bitstream's shape fingerprint (IDENTIFY's and the table area's)."""
        return self._link.shape_hash

    @property
    def divisor(self) -> int:
        """Clock cycles per UART bit."""
        return self._divisor

    @property
    def flash_offset(self) -> int:
        """Where the boot loader reads the table area in the configuration flash."""
        return self._flash_offset

    @property
    def boot_load(self) -> bool:
        """True when the design loads SPRAM tables from flash at boot."""
        return self._boot

    @property
    def link_params(self) -> dict:
        """The :class:`~spikelut.hdl.hostlink.link.HostLink` parameters (what IDENTIFY
        reports), as keyword arguments."""
        return {f.name: getattr(self._link, f.name) for f in dataclasses.fields(self._link)}

    @property
    def net(self):
        """The network core."""
        return self._net

    @property
    def is_language_model(self) -> bool:
        """True when the core is a language model (an RNNCore or a TransformerCore)."""
        return self._lm

    def _write_ports(self) -> dict:
        """Table-space layer -> the core's table write port."""
        if self._lm:
            names = dict(enumerate(lm_write_ports(self._net)))
        else:
            names = {lt.layer: f"w{lt.layer}_stream" for lt in self._space.layers}
        return {lt.layer: getattr(self._net, names[lt.layer]) for lt in self._space.layers}

    def elaborate(self, platform):
        m = Module()
        net = self._net
        m.submodules.net = net
        m.submodules.link = link = HostLink(**self.link_params)
        m.submodules.uart_rx = urx = UARTReceiver(divisor=self._divisor)
        m.submodules.uart_tx = utx = UARTTransmitter(divisor=self._divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        wiring.connect(m, urx.o_stream, link.uart_rx)
        wiring.connect(m, link.uart_tx, utx.i_stream)
        ports = self._write_ports()
        signatures = {k: port.signature.flip() for k, port in ports.items()}
        m.submodules.router = router = TableRouter(signatures, self._space)
        for k, port in ports.items():
            wiring.connect(m, getattr(router, f"w{k}_stream"), port)
        failed = self._tables(m, link, router.i_table)
        if self._lm:
            self._connect_lm(m, link, net)
        else:
            m.d.comb += [
                net.i_stream.payload.eq(link.o_vector.payload),
                net.i_stream.valid.eq(link.o_vector.valid),
                link.o_vector.ready.eq(net.i_stream.ready),
                link.i_result.payload.eq(net.o_stream.payload.index),
                link.i_result.valid.eq(net.o_stream.valid),
                net.o_stream.ready.eq(link.i_result.ready),
            ]
        self._leds(m, link, failed)
        return m

    @staticmethod
    def _connect_lm(m, link, core) -> None:
        """The link's tokens, rule and exponential-table writes to the language model; its
        answers back (the link checked every token against the vocabulary)."""
        m.d.comb += [
            core.i_stream.payload.token.eq(link.o_token.payload.token),
            core.i_stream.payload.first.eq(link.o_token.payload.first),
            core.i_stream.valid.eq(link.o_token.valid),
            link.o_token.ready.eq(core.i_stream.ready),
            link.i_answer.payload.eq(core.o_stream.payload.index),
            link.i_answer.valid.eq(core.o_stream.valid),
            core.o_stream.ready.eq(link.i_answer.ready),
        ]
        wiring.connect(m, link.o_cfg, core.cfg_stream)
        m.d.comb += [
            core.w_exp.payload.addr.eq(link.o_exp.payload.addr),
            core.w_exp.payload.data.eq(link.o_exp.payload.data),
            core.w_exp.valid.eq(link.o_exp.valid),
            link.o_exp.ready.eq(core.w_exp.ready),
        ]

    def _tables(self, m, link, router_in):
        """Table writes: from the boot loader until it is done (the link holds requests
        until then), then from the link; a boot load that passed makes the link's tables
        valid with its hash. Returns ``failed``: the flash area was rejected."""
        link_tables = link.o_table
        if not self._boot:
            wiring.connect(m, link_tables, router_in)
            return Const(0)
        m.submodules.boot = boot = BootLoader(
            self._space,
            shape_hash=self.shape_hash,
            offset=self._flash_offset,
            half_period=self._spi_half,
        )
        wiring.connect(m, boot.flash, wiring.flipped(self.flash))
        ok_before = Signal()
        m.d.sync += ok_before.eq(boot.ok)
        m.d.comb += [
            link.hold.eq(~boot.done),
            link.set_tables.eq(boot.ok & ~ok_before),
            link.set_hash.eq(boot.hash),
        ]
        with m.If(boot.done):
            m.d.comb += [
                router_in.valid.eq(link_tables.valid),
                router_in.payload.eq(link_tables.payload),
                link_tables.ready.eq(router_in.ready),
            ]
        with m.Else():
            m.d.comb += [
                router_in.valid.eq(boot.o_table.valid),
                router_in.payload.eq(boot.o_table.payload),
                boot.o_table.ready.eq(router_in.ready),
            ]
        return boot.failed

    def _leds(self, m, link, failed) -> None:
        """0: tables valid; 1: error (flash rejected, or an ERROR reply lately); 2: link busy.
        Errors and activity are stretched so that they are visible."""
        stretch = max(2, self._clock_hz // 10)
        err_t = Signal(range(stretch + 1))
        busy_t = Signal(range(stretch + 1))
        for timer, event in ((err_t, link.error), (busy_t, link.busy)):
            with m.If(event):
                m.d.sync += timer.eq(stretch)
            with m.Elif(timer != 0):
                m.d.sync += timer.eq(timer - 1)
        m.d.comb += [
            self.leds[0].eq(link.tables_valid),
            self.leds[1].eq(failed | (err_t != 0)),
            self.leds[2].eq(busy_t != 0),
        ]


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
    cfg = family_pll(spec.family, base, want)
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
                cs.o.eq(~core.flash.cs_n),  # the resource's cs is active high (PinsN)
                sck.o.eq(core.flash.sck),
                copi.o.eq(core.flash.copi),
                core.flash.cipo.eq(cipo.i),
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
