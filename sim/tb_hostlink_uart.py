"""cocotb test: a host process drives the host-link gateware over a TCP-bridged UART.

Top level: ``peripherals_top`` of ``tests/test_cocotb_peripherals.py`` (its ``hl_rx`` /
``hl_tx`` pins carry the host link). Environment: ``BRIDGE_PORT_FILE`` (where to publish the
TCP port), ``UART_DIVISOR`` and ``CLOCK_NS``. The test passes when the host hangs up after a
session in which the design never saw a framing error.
"""

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from spikelut.sim.uart_bridge import serve_tcp
from spikelut.sim.uart_model import UartSink, UartSource

CLOCK_NS = int(os.environ.get("CLOCK_NS", "10"))
DIVISOR = int(os.environ.get("UART_DIVISOR", "8"))


@cocotb.test()
async def hostlink_over_tcp(dut):
    """Serve one host session on the host link's UART pins."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.rx.value = 1
    dut.hl_rx.value = 1
    dut.flash__cipo.value = 1
    dut.cmd_valid.value = 0
    dut.data_ready.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    timing = {"clock_period_ns": CLOCK_NS, "divisor": DIVISOR}
    source = UartSource(dut.hl_rx, **timing)
    sink = UartSink(dut.hl_tx, **timing)
    stats = await serve_tcp(source, sink, port_file=os.environ["BRIDGE_PORT_FILE"])
    dut._log.info(
        "bridge moved %d bytes in, %d bytes out", stats["to_design"], stats["from_design"]
    )
    assert stats["to_design"] > 0 and stats["from_design"] > 0
    assert sink.framing_errors == 0
