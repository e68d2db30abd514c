"""UART and SPI-flash gateware on Verilator via cocotb, against the simulated peripherals."""

import threading
import time

import pytest
from amaranth import Module, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.boards.host import BoardClient, open_transport
from spikelut.hdl.hostlink.link import HostLink as HostLinkGateware
from spikelut.hdl.spiflash import FlashPinSignature, SPIFlashReader
from spikelut.hdl.uart import UARTReceiver, UARTTransmitter
from spikelut.sim.cocotb_runner import CocotbFailure, run_cocotb
from spikelut.sim.spiflash_model import FAST_READ, JEDEC_ID, READ, READ_STATUS, SpiFlashLogic

DIVISOR = 8
CLOCK_NS = 10
LINK = dict(
    in_width=8,
    n_inputs=4,
    result_width=12,
    table_word_bits=8,
    table_addr_bits=4,
    n_layers=1,
    clock_hz=10**9 // CLOCK_NS,
    model_hash=bytes.fromhex("5eed") * 16,
    table_words=1,
    max_payload=64,
    timeout_cycles=2000 * DIVISOR,
)


class SumCore(wiring.Component):
    """Dummy network core: result = sum of the vector + the table word at address 0."""

    def __init__(self):
        super().__init__(
            {
                "i_stream": In(
                    stream.Signature(data.ArrayLayout(signed(LINK["in_width"]), LINK["n_inputs"]))
                ),
                "o_stream": Out(stream.Signature(LINK["result_width"])),
                "table": In(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "layer": range(LINK["n_layers"]),
                                "addr": LINK["table_addr_bits"],
                                "data": LINK["table_word_bits"],
                            }
                        )
                    )
                ),
            }
        )

    def elaborate(self, platform):
        m = Module()
        bias = Signal(LINK["table_word_bits"])
        m.d.comb += [self.table.ready.eq(1), self.i_stream.ready.eq(~self.o_stream.valid)]
        with m.If(self.table.valid & (self.table.payload.addr == 0)):
            m.d.sync += bias.eq(self.table.payload.data)
        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            total = bias
            for k in range(LINK["n_inputs"]):
                total = total + self.i_stream.payload[k]
            m.d.sync += [self.o_stream.payload.eq(total), self.o_stream.valid.eq(1)]
        return m


class PeripheralsTop(wiring.Component):
    """UART echo through a FIFO, a SPI flash reader on the ``flash`` pins (Verilog
    ``flash__sck`` ...) with its command and bytes on flat ports, and a host link (UART,
    :class:`HostLinkGateware`, :class:`SumCore`) on ``hl_rx``/``hl_tx``, for cocotb."""

    rx: In(1, init=1)
    tx: Out(1)
    hl_rx: In(1, init=1)
    hl_tx: Out(1)
    flash: Out(FlashPinSignature())
    cmd_addr: In(24)
    cmd_len: In(24)
    cmd_fast: In(1)
    cmd_valid: In(1)
    cmd_ready: Out(1)
    data: Out(8)
    data_valid: Out(1)
    data_ready: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.urx = urx = UARTReceiver(divisor=DIVISOR)
        m.submodules.utx = utx = UARTTransmitter(divisor=DIVISOR)
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(width=8, depth=8)
        m.d.comb += [
            urx.rx.eq(self.rx),
            self.tx.eq(utx.tx),
            buf.w_data.eq(urx.o_stream.payload),
            buf.w_en.eq(urx.o_stream.valid),
            urx.o_stream.ready.eq(buf.w_rdy),
            utx.i_stream.payload.eq(buf.r_data),
            utx.i_stream.valid.eq(buf.r_rdy),
            buf.r_en.eq(utx.i_stream.ready),
        ]
        m.submodules.spi = spi = SPIFlashReader(half_period=2, wake_cycles=20)
        wiring.connect(m, spi.flash, wiring.flipped(self.flash))
        m.d.comb += [
            spi.i_cmd.payload.addr.eq(self.cmd_addr),
            spi.i_cmd.payload.length.eq(self.cmd_len),
            spi.i_cmd.payload.fast.eq(self.cmd_fast),
            spi.i_cmd.valid.eq(self.cmd_valid),
            self.cmd_ready.eq(spi.i_cmd.ready),
            self.data.eq(spi.o_stream.payload),
            self.data_valid.eq(spi.o_stream.valid),
            spi.o_stream.ready.eq(self.data_ready),
        ]
        m.submodules.hl_urx = hl_urx = UARTReceiver(divisor=DIVISOR)
        m.submodules.hl_utx = hl_utx = UARTTransmitter(divisor=DIVISOR)
        m.submodules.link = link = HostLinkGateware(**LINK)
        m.submodules.core = core = SumCore()
        m.d.comb += [hl_urx.rx.eq(self.hl_rx), self.hl_tx.eq(hl_utx.tx)]
        wiring.connect(m, hl_urx.o_stream, link.uart_rx)
        wiring.connect(m, link.uart_tx, hl_utx.i_stream)
        wiring.connect(m, link.o_vector, core.i_stream)
        wiring.connect(m, core.o_stream, link.i_result)
        wiring.connect(m, link.o_table, core.table)
        return m


@pytest.mark.slow
def test_uart_and_spi_flash_on_verilator(tmp_path):
    results = run_cocotb(
        PeripheralsTop(),
        toplevel="peripherals_top",
        test_module="spikelut.sim.tb_peripherals",
        env={"UART_DIVISOR": DIVISOR, "CLOCK_NS": CLOCK_NS},
        test_dir=tmp_path,
    )
    assert {t.name.split(".")[-1] for t in results.tests} == {"uart_echo", "spi_flash_reads"}
    assert all(t.passed for t in results.tests)
    # a second run of the same design reuses the build
    again = run_cocotb(
        PeripheralsTop(),
        toplevel="peripherals_top",
        test_module="spikelut.sim.tb_peripherals",
        env={"UART_DIVISOR": DIVISOR, "CLOCK_NS": CLOCK_NS},
        testcase="uart_echo",
        test_dir=tmp_path / "again",
    )
    assert again.cached and len(again.tests) == 1


@pytest.mark.slow
def test_runner_reports_a_failing_test(tmp_path):
    # the wrong divisor makes the echo test fail: the runner must raise, naming the test
    with pytest.raises(CocotbFailure, match="uart_echo"):
        run_cocotb(
            PeripheralsTop(),
            toplevel="peripherals_top",
            test_module="spikelut.sim.tb_peripherals",
            env={"UART_DIVISOR": DIVISOR * 2, "CLOCK_NS": CLOCK_NS},
            testcase="uart_echo",
            test_dir=tmp_path,
        )


def test_flash_logic_commands():
    image = bytes(range(256)) * 2
    f = SpiFlashLogic(image, powered_down=True)
    f.select()
    assert [f.exchange(b) for b in (READ, 0, 0, 1)][-1] == 0xFF  # asleep: ignored
    assert f.errors
    f.deselect()
    f.select()
    f.exchange(0xAB)
    assert not f.powered_down
    f.deselect()
    f.select()
    out = [f.exchange(b) for b in (JEDEC_ID, 0, 0)]
    assert out == [0xEF, 0x40, 0x16]
    f.deselect()
    f.select()
    assert f.exchange(READ_STATUS) == 0
    f.deselect()
    f.select()
    out = [f.exchange(b) for b in (FAST_READ, 0, 1, 0xFE, 0, 0, 0)]
    assert out[-3:] == [0xFE, 0xFF, 0x00]
    f.deselect()
    f.select()
    out = [f.exchange(b) for b in (READ, 0, 0, 5, 0)]
    assert out[-2:] == [5, 6]


@pytest.mark.slow
def test_host_runtime_over_simulated_uart(tmp_path):
    """boards.host.BoardClient talks to the host-link gateware on Verilator through a TCP bridge."""
    port_file = tmp_path / "port"
    out = {}

    def simulate():
        try:
            out["results"] = run_cocotb(
                PeripheralsTop(),
                toplevel="peripherals_top",
                test_module="spikelut.sim.tb_hostlink_uart",
                env={
                    "UART_DIVISOR": DIVISOR,
                    "CLOCK_NS": CLOCK_NS,
                    "BRIDGE_PORT_FILE": str(port_file),
                },
                test_dir=tmp_path / "sim",
            )
        except BaseException as e:  # re-raised in the test's thread
            out["error"] = e

    sim = threading.Thread(target=simulate, daemon=True)
    sim.start()
    deadline = time.monotonic() + 600
    while not port_file.exists():
        assert sim.is_alive() and time.monotonic() < deadline, out.get("error", "no port")
        time.sleep(0.05)
    port = int(port_file.read_text())
    vectors = [[(7 * i + 3 * k) % 256 - 128 for k in range(4)] for i in range(20)]
    with BoardClient(open_transport(f"tcp:127.0.0.1:{port}"), timeout=10.0) as link:
        ident = link.identify()
        link.check_model_hash(LINK["model_hash"])
        first = link.infer(vectors[0])
        link.begin_tables()
        assert link.load_tables(0, [5]) == 1
        link.commit_tables(bytes(range(32)))
        link.check_model_hash(bytes(range(32)))
        second = link.infer(vectors[0])
        start = time.monotonic()
        batch = link.infer_batch(vectors)
        seconds = time.monotonic() - start
        counters = link.read_counters()
    sim.join(120)
    if "error" in out:
        raise out["error"]
    assert out["results"].passed
    assert ident.n_inputs == 4 and ident.clock_hz == 100_000_000 and ident.max_batch == 15
    assert first == sum(vectors[0]) % 4096
    assert second == (sum(vectors[0]) + 5) % 4096
    assert batch == [(sum(v) + 5) % 4096 for v in vectors]
    # identify (twice), infer, begin, load, commit, identify, infer, two batches, counters
    assert counters.inferences == 22 and counters.errors == 0 and counters.frames == 11
    print(f"{len(vectors) / seconds:.0f} inferences/s through the simulated UART link")
