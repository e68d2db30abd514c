"""The board top: PLL settings, platform elaboration, and the complete board core on
Verilator with both table paths (boot from the SPI-flash model, upload over LOAD_TABLES)."""

import re

import numpy as np
import pytest
from helpers_models import SPRAM_PLANS, tiny_model

from spikelut.boards.design import make_core, model_hash, model_tables
from spikelut.boards.flash_image import TABLE_OFFSET, table_area, table_payload
from spikelut.boards.host import BoardClient, open_transport
from spikelut.boards.platforms import board
from spikelut.boards.pll import ecp5_pll, ice40_pll
from spikelut.boards.runtime import BoardMismatch, run_on_board
from spikelut.boards.tables import table_space
from spikelut.boards.top import BoardTop, check_boot, choose_pll
from spikelut.compiler.backend.compile import plan_core
from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.placement import LayerPlan
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.golden import run_classifier
from spikelut.hdl.hostlink.wire import FrameType
from spikelut.sim.board_sim import sim_rate, simulated_board

CLOCK_NS, DIVISOR = 10, 16


def board_core_of(model, plans, kind=CoreKind.PARALLEL, *, spec="icebreaker", **options):
    """The BoardCore of ``model`` with a ``kind`` core at placement ``plans``."""
    core = plan_core(model, board(spec).target, kind=kind, plans=plans)
    return make_core(model, core, **options)


@pytest.mark.parametrize("want", [16e6, 30e6, 48e6, 100e6])
def test_ice40_pll_settings_obey_the_limits(want):
    cfg = ice40_pll(12e6, want)
    p = cfg.params
    pfd = 12e6 / (p["divr"] + 1)
    vco = pfd * (p["divf"] + 1)
    assert 10e6 <= pfd <= 133e6 and 533e6 <= vco <= 1066e6
    assert cfg.out_hz == vco / (1 << p["divq"])
    assert abs(cfg.out_hz - want) / want < 0.01


@pytest.mark.parametrize("want", [12.5e6, 50e6, 60e6, 125e6])
def test_ecp5_pll_settings_obey_the_limits(want):
    cfg = ecp5_pll(25e6, want)
    p = cfg.params
    assert cfg.out_hz == 25e6 * p["clkfb_div"] / p["clki_div"]
    assert 400e6 <= cfg.out_hz * p["clkop_div"] <= 800e6
    assert cfg.out_hz == want  # all of these are exact from 25 MHz


def test_choose_pll():
    assert choose_pll(board("icebreaker"), None) is None
    assert choose_pll(board("icebreaker"), 12) is None
    assert choose_pll(board("ulx3s-85f"), 50).out_mhz == 50
    with pytest.raises(ValueError, match=r"16\.\.275"):
        choose_pll(board("icebreaker"), 5)
    with pytest.raises(ValueError, match="internal oscillator"):
        choose_pll(board("upduino3"), 24)


@pytest.mark.parametrize(
    ("name", "freq"), [("icebreaker", 24), ("ulx3s-85f", 50), ("upduino3", None)]
)
def test_board_top_elaborates_for_the_platform(name, freq):
    """Pins, PLL and constraints resolve on the amaranth-boards platform (no tools run)."""
    spec = board(name)
    pll = choose_pll(spec, freq)
    clock = pll.out_hz if pll else spec.clock_hz
    plans = SPRAM_PLANS if spec.family == "ice40" else [LayerPlan(), LayerPlan()]
    core = board_core_of(
        tiny_model(), plans, spec=name, clock_hz=round(clock), divisor=round(clock / 115200)
    )
    plan = spec.platform().prepare(BoardTop(core, pll=pll), name="top")
    rtlil = plan.files["top.il"]
    rtlil = rtlil if isinstance(rtlil, str) else rtlil.decode()
    if pll is not None:
        assert ("SB_PLL40_PAD" if spec.family == "ice40" else "EHXPLLL") in rtlil
        constraints = "".join(
            v if isinstance(v, str) else v.decode()
            for k, v in plan.files.items()
            if k.endswith((".pcf", ".lpf"))
        )
        # a constraint on the PLL's output net, not only on the oscillator's pin
        if spec.family == "ice40":
            want = rf"^set_frequency clk\S* {pll.out_hz / 1e6}$"
        else:
            want = rf'^FREQUENCY NET "clk\S*" {pll.out_hz} HZ;$'
        assert re.search(want, constraints, re.M), constraints
    assert core.boot_load == (spec.family == "ice40")


def test_boot_parameters_are_checked():
    """What BoardCore and its BootLoader check the boot parameters with."""
    params, _ = network_params(tiny_model(), SPRAM_PLANS)
    space = table_space(params)
    layers, offset, half = check_boot(space, offset=TABLE_OFFSET, half_period=2)
    assert [lt.layer for lt in layers] == [0] and (offset, half) == (TABLE_OFFSET, 2)
    with pytest.raises(ValueError, match="flash offset must be"):
        check_boot(space, offset=(1 << 24) - 16, half_period=1)
    with pytest.raises(ValueError, match="half_period must be >= 1, not 0"):
        check_boot(space, offset=0, half_period=0)
    bram, _ = network_params(tiny_model(), [LayerPlan(), LayerPlan()])
    with pytest.raises(ValueError, match="no SPRAM layer"):
        check_boot(table_space(bram), offset=0, half_period=1)


def _session(core, image, body):
    with (
        simulated_board(core, flash_image=image, clock_ns=CLOCK_NS, divisor=DIVISOR) as sim,
        BoardClient(open_transport(sim.port), timeout=60.0, retries=0) as link,
    ):
        out = body(link)
    return sim, out


def _vectors(n=12, seed=5):
    return np.random.default_rng(seed).integers(-16, 16, (n, 8))


@pytest.mark.slow
@pytest.mark.parametrize("indexer", ["parallel", "serial"])
def test_tables_boot_from_the_flash_model_and_inferences_match_golden(indexer):
    model = tiny_model()
    core = board_core_of(
        model,
        SPRAM_PLANS,
        CoreKind(indexer),
        clock_hz=10**9 // CLOCK_NS,
        divisor=DIVISOR,
        max_payload=128,
    )
    area = table_area(table_payload(core.space, model_tables(model)), model_hash(model))
    x = _vectors()

    def body(link):
        with pytest.raises(BoardMismatch):
            run_on_board(link, tiny_model(seed=1), x)
        return run_on_board(link, model, x)

    sim, result = _session(core, b"\xff" * TABLE_OFFSET + area, body)
    assert sim.timeline["boot"] == "ok"
    assert result["agree"] == result["n"] == len(x)
    assert result["predictions"] == run_classifier(model, x).predictions.tolist()
    assert result["counters"]["errors"] == 0
    n, seconds = sim_rate(sim.timeline, FrameType.INFER_BATCH, FrameType.RESULT_BATCH)
    assert n >= 1 and seconds > 0


def _zeroed_layer0(model):
    layers = [model.layers[0].with_tables(np.zeros_like(model.layers[0].tables)), model.layers[1]]
    return ClassifierMLP(model.encoding, layers, model.n_classes, quant=model.quant)


@pytest.mark.slow
@pytest.mark.parametrize("flash", ["blank", "corrupt"])
def test_rejected_flash_leaves_tables_unloaded_and_link_upload_fills_them(flash):
    model = tiny_model()
    core = board_core_of(
        model, SPRAM_PLANS, clock_hz=10**9 // CLOCK_NS, divisor=DIVISOR, max_payload=128
    )
    area = bytearray(table_area(table_payload(core.space, model_tables(model)), model_hash(model)))
    area[20] ^= 0x01  # one payload bit: the CRC must catch it
    image = None if flash == "blank" else b"\xff" * TABLE_OFFSET + bytes(area)
    x = _vectors()

    def body(link):
        before = link.infer_batch(x.tolist())
        return before, run_on_board(link, model, x, space=core.space)

    sim, (before, result) = _session(core, image, body)
    assert sim.timeline["boot"] == "rejected"
    # nothing was copied: layer 0 (SPRAM) still reads zeros, layer 1 (BRAM) is intact
    zeroed = run_classifier(_zeroed_layer0(model), x).predictions.tolist()
    assert before == zeroed != run_classifier(model, x).predictions.tolist()
    assert result["table_frames"] >= 2
    assert result["agree"] == result["n"] == len(x)
