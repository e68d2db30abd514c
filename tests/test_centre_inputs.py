"""``centre_inputs``: non-negative integer inputs one bit narrower, every output unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers_models import tiny_model
from helpers_sim import ints, stream_through
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikelut.compiler.backend.cores import CoreKind, build_core
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.passes.narrowing import apply_shifts, centre_inputs
from spikelut.hdl.storage import Storage


def _outputs(model, raw):
    trace = run_classifier(model, model.encoding.encode_int(raw))
    return trace.outputs[-1], trace.predictions


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    bits=st.integers(3, 7),
    shift=st.integers(0, 5),
    constants=st.integers(0, 3),
)
def test_centred_inputs_change_no_output_and_save_a_bit(seed, bits, shift, constants):
    rng = np.random.default_rng(seed)
    d, hi = 6, (1 << (bits - 1)) - 1
    consts = np.arange(1, constants + 1) * hi // (constants + 1)
    enc = InputEncoding(offset=np.zeros(d), gain=np.ones(d), bits=bits, constants=consts)
    l0 = LUTLayer.random(in_dim=d + constants, out_dim=5, n_tables=6, n_c=3, rng=rng)
    l1 = LUTLayer.random(in_dim=5, out_dim=3, n_tables=4, n_c=2, rng=rng)
    l0, l1 = (la.with_tables(rng.integers(-8, 8, la.tables.shape)) for la in (l0, l1))
    quant = [LayerQuant(table_bits=4, in_shift=min(shift, bits - 2)), LayerQuant(table_bits=4)]
    model = ClassifierMLP(enc, [l0, l1], 3, quant=quant)
    centred = centre_inputs(model)
    assert centred.encoding.bits == bits - 1
    # every raw input of the data's range, and beyond its top (clipped alike)
    raw = np.random.default_rng(seed).integers(0, hi + 4, (300, d))
    for got, want in zip(_outputs(centred, raw), _outputs(model, raw), strict=True):
        np.testing.assert_array_equal(got, want)
    plan = [LayerPlan(Storage.LOGIC)] * len(model.layers)
    before, _ = network_params(model, plan, kind=CoreKind.FROZEN)
    after, _ = network_params(centred, plan, kind=CoreKind.FROZEN)
    assert after[0].in_width == before[0].in_width - 1


def test_centred_frozen_core_matches_golden_in_simulation():
    model = centre_inputs(apply_shifts(tiny_model(4), {0: 1}))
    params, _ = network_params(model, [LayerPlan(Storage.LOGIC)] * 2, kind=CoreKind.FROZEN)
    net = build_core(CoreKind.FROZEN, params)
    rng = np.random.default_rng(1)
    x = model.encoding.encode_int(rng.integers(0, 16, (60, model.encoding.dim)))
    got = stream_through(net, x.tolist(), rng, gap_p=0.2, ready_p=0.7)
    trace = run_classifier(model, x)
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], trace.outputs[-1])
    np.testing.assert_array_equal([int(p.index) for _, p in got], trace.predictions)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"offset": np.full(8, 0.5)}, "encoded as they are"),
        ({"frac_bits": 2}, "encoded as they are"),
        ({"bits": 2}, "at least 3"),
    ],
)
def test_centring_refuses_other_encodings(change, message):
    model = tiny_model()
    model = dataclasses.replace(model, encoding=dataclasses.replace(model.encoding, **change))
    with pytest.raises(ValueError, match=message):
        centre_inputs(model)
    with pytest.raises(ValueError, match="shifts up to 3"):
        centre_inputs(apply_shifts(tiny_model(), {0: 4}))
