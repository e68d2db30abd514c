"""The board top: PLL settings, platform elaboration, the shape fingerprint, and the complete
board core on Verilator over its UART with both table paths (boot from the SPI-flash model,
a load over the link) and the tables' contract (:mod:`spikelut.hdl.hostlink.wire`,
"Tables"): the board runs only tables it checked, and reports whose they are."""

import re

import numpy as np
import pytest
from amaranth.hdl import Fragment
from helpers_models import SPRAM_PLANS, retrained, tiny_model

from spikelut.boards.design import (
    board_core,
    build_tables,
    core_tables,
    make_core,
    model_hash,
    model_tables,
    shape_hash,
)
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
from spikelut.compiler.backend.plan import plans_to_json
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.hostlink.wire import ErrorCode, FrameType, ProtocolError
from spikelut.hdl.storage import Storage
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
    assert [lt.layer for lt in layers] == [0, 1] and (offset, half) == (TABLE_OFFSET, 2)
    with pytest.raises(ValueError, match="flash offset must be"):
        check_boot(space, offset=(1 << 24) - 16, half_period=1)
    with pytest.raises(ValueError, match="half_period must be >= 1, not 0"):
        check_boot(space, offset=0, half_period=0)
    bram, _ = network_params(tiny_model(), [LayerPlan(), LayerPlan()])
    with pytest.raises(ValueError, match="no SPRAM layer"):
        check_boot(table_space(bram), offset=0, half_period=1)


def test_shape_fingerprint_tells_same_shape_from_another():
    """Same shape, other tables: the same fingerprint at a placement; other anchors, other
    widths or a table in logic changed: another."""
    model, other = tiny_model(), retrained(tiny_model())
    assert model_hash(model) != model_hash(other)

    def fingerprint(m, plans=SPRAM_PLANS, kind=CoreKind.PARALLEL):
        params, _ = network_params(m, plans, kind=kind)
        return shape_hash(kind, params)

    assert fingerprint(model) == fingerprint(other)
    info = {"plans": plans_to_json(SPRAM_PLANS), "indexer": "parallel"}
    assert build_tables(other, info).shape_hash == fingerprint(model)
    assert fingerprint(tiny_model(seed=1)) != fingerprint(model)  # other anchors
    assert fingerprint(_zeroed_layer0(model)) != fingerprint(model)  # other widths
    assert fingerprint(model, kind=CoreKind.SERIAL) != fingerprint(model)
    logic = [LayerPlan(Storage.LOGIC), LayerPlan(Storage.BRAM, 2, 4)]
    assert fingerprint(other, logic) != fingerprint(model, logic)  # tables in the logic
    with pytest.raises(ValueError, match="another shape"):
        build_tables(model, {"plans": plans_to_json(SPRAM_PLANS[:1]), "indexer": "parallel"})


def test_a_784_input_classifier_gets_a_payload_that_holds_its_vector():
    """A bigger input vector than the default payload holds (784 inputs of 9 bits: 1,568
    bytes) builds with a payload sized for it; the board core elaborates."""
    rng = np.random.default_rng(0)
    l0 = LUTLayer.random(in_dim=784, out_dim=16, n_tables=32, n_c=4, rng=rng)
    l0 = l0.with_tables(rng.integers(-8, 8, l0.tables.shape))
    l1 = LUTLayer.random(in_dim=16, out_dim=10, n_tables=8, n_c=3, rng=rng)
    l1 = l1.with_tables(rng.integers(-8, 8, l1.tables.shape))
    quant = [LayerQuant(table_bits=4), LayerQuant(table_bits=4)]
    model = ClassifierMLP(InputEncoding.identity(784, bits=9), [l0, l1], 10, quant=quant)
    spec = board("icebreaker")
    core = make_core(model, board_core(model, spec), clock_hz=spec.clock_hz, divisor=104)
    link = core.link_params
    assert link["max_payload"] == 2040 >= 784 * 2 + 2
    Fragment.get(core, None)


def _session(core, area, body):
    with (
        simulated_board(core, flash_area=area, clock_ns=CLOCK_NS) as sim,
        BoardClient(open_transport(sim.port), timeout=60.0, retries=0) as link,
    ):
        out = body(link)
    return sim, out


def _vectors(n=12, seed=5):
    return np.random.default_rng(seed).integers(-16, 16, (n, 8))


def _sim_core(model, kind=CoreKind.PARALLEL):
    return board_core_of(model, SPRAM_PLANS, kind, clock_hz=10**9 // CLOCK_NS, divisor=DIVISOR)


def _area(core, model, shape=None):
    """The flash's table area of ``model``'s tables for ``core``'s bitstream."""
    payload = table_payload(core.space, model_tables(model))
    return table_area(payload, model_hash(model), shape or core.shape_hash)


def _build(model, kind=CoreKind.PARALLEL):
    """What loading ``model``'s tables into ``_sim_core``'s bitstream takes."""
    return core_tables(plan_core(model, board("icebreaker").target, kind=kind, plans=SPRAM_PLANS))


@pytest.mark.slow
@pytest.mark.parametrize("indexer", ["parallel", "serial"])
def test_tables_boot_from_the_flash_model_and_inferences_match_golden(indexer):
    model = tiny_model()
    core = _sim_core(model, CoreKind(indexer))
    x = _vectors()

    def body(link):
        with pytest.raises(BoardMismatch, match="give the build folder"):
            run_on_board(link, tiny_model(seed=1), x)
        with pytest.raises(BoardMismatch, match="not the bitstream's"):
            run_on_board(link, tiny_model(seed=1), x, build=_build(tiny_model(seed=1)))
        return link.identify(), run_on_board(link, model, x)

    sim, (ident, result) = _session(core, _area(core, model), body)
    assert sim.timeline["boot"] == "ok"
    assert ident.holds(model_hash(model)) and ident.model_hash == model_hash(model)
    assert ident.shape_hash == core.shape_hash
    assert result["table_frames"] == 0
    assert result["agree"] == result["n"] == len(x)
    assert result["predictions"] == run_classifier(model, x).predictions.tolist()
    assert result["counters"]["errors"] == 0
    n, seconds = sim_rate(sim.timeline, FrameType.INFER_BATCH, FrameType.RESULT_BATCH)
    assert n >= 1 and seconds > 0


def _zeroed_layer0(model):
    layers = [model.layers[0].with_tables(np.zeros_like(model.layers[0].tables)), model.layers[1]]
    return ClassifierMLP(model.encoding, layers, model.n_classes, quant=model.quant)


def _damaged(flash, core, model):
    """Flash table areas the boot loader must reject."""
    image = bytearray(_area(core, model))
    if flash == "blank":
        return None
    if flash == "corrupt":
        image[40] ^= 0x01  # one payload bit
    elif flash == "zeroed-hash":
        image[16:32] = bytes(16)  # the CRC covers the hash
    elif flash == "other-shape":  # a consistent area for another bitstream of this size
        return _area(core, model, shape=b"\x01" * 8)
    return bytes(image)


@pytest.mark.slow
@pytest.mark.parametrize("flash", ["blank", "corrupt", "zeroed-hash", "other-shape"])
def test_a_rejected_flash_leaves_no_valid_tables_until_a_load_commits(flash):
    model = tiny_model()
    core = _sim_core(model)
    x = _vectors()

    def body(link):
        before = link.identify()
        with pytest.raises(ProtocolError) as refused:
            link.infer_batch(x.tolist())
        return before, refused.value.code, run_on_board(link, model, x, build=_build(model))

    sim, (before, code, result) = _session(core, _damaged(flash, core, model), body)
    assert sim.timeline["boot"] == "rejected"
    # nothing valid: no answers from whatever the tables hold, an ERROR saying why
    assert not before.tables_valid and before.tables_hash == bytes(16)
    assert before.model_hash == model_hash(model)
    assert code == ErrorCode.NO_TABLES
    assert result["table_frames"] >= 2
    assert result["identity"]["tables_hash"] == model_hash(model).hex()
    assert result["agree"] == result["n"] == len(x)


@pytest.mark.slow
def test_a_same_shape_models_tables_run_on_the_bitstream_and_are_reported():
    """The flash holds another model of the same shape (a retrained one): the board boots
    it and reports its hash beside the bitstream's; the host runs that model as is, and
    loads the bitstream's model, then the other again, over the link, each reported after
    its load and each answering as its golden model."""
    model, other = tiny_model(), retrained(tiny_model())
    core = _sim_core(model)
    x = _vectors(16, seed=8)

    def body(link):
        booted = link.identify()
        as_booted = run_on_board(link, other, x)
        with pytest.raises(BoardMismatch, match="give the build folder"):
            run_on_board(link, model, x)
        own = run_on_board(link, model, x, build=_build(model))
        info = {"plans": plans_to_json(SPRAM_PLANS), "indexer": "parallel"}
        again = run_on_board(link, other, x, build=build_tables(other, info))
        return booted, as_booted, own, again

    sim, (booted, as_booted, own, again) = _session(core, _area(core, other), body)
    assert sim.timeline["boot"] == "ok"
    assert booted.model_hash == model_hash(model) and booted.holds(model_hash(other))
    assert as_booted["table_frames"] == 0 and own["table_frames"] >= 2
    assert own["identity"]["tables_hash"] == model_hash(model).hex()
    assert again["identity"]["tables_hash"] == model_hash(other).hex()
    want_other = run_classifier(other, x).predictions.tolist()
    want_model = run_classifier(model, x).predictions.tolist()
    assert want_other != want_model
    assert as_booted["predictions"] == again["predictions"] == want_other
    assert own["predictions"] == want_model
    assert again["counters"]["errors"] == 0
