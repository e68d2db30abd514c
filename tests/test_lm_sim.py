"""A language-model core in cocotb on Verilator: a prompt under stream gaps and stalls, then
generation with every answer fed back, greedy and sampled, parallel and serial indexing,
every chosen token and the first steps' logits against the golden model."""

from __future__ import annotations

import numpy as np
import pytest

from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.backend.sequence import RNNPlan
from spikelut.compiler.ir.classifier import LayerQuant
from spikelut.compiler.ir.golden import generate_rnn
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.selection import Selection
from spikelut.hdl.storage import Storage
from spikelut.sim.lm_sim import simulate_lm

TEXT = "the cat sat on the mat; a spiking net reads the text one byte at a time."
CHARS = sorted(set(TEXT))


def small_rnn(seed: int = 23) -> IntegerRNN:
    """A random integer spiking RNN over the characters of TEXT."""
    rng = np.random.default_rng(seed)
    vocab, dim = len(CHARS), 10
    cell = LUTLayer.random(in_dim=dim, out_dim=dim, n_tables=6, n_c=4, rng=rng)
    cell = cell.with_tables(rng.integers(-8, 8, cell.tables.shape))
    unemb = LUTLayer.random(in_dim=dim, out_dim=vocab, n_tables=5, n_c=3, rng=rng)
    unemb = unemb.with_tables(rng.integers(-16, 16, unemb.tables.shape))
    return IntegerRNN(
        embedding=rng.integers(-8, 8, (vocab, dim)),
        cell=cell,
        unembedder=unemb,
        cell_quant=LayerQuant(table_bits=4, in_shift=1),
        unembedder_quant=LayerQuant(table_bits=5, in_shift=0, out_scale_log2=-3),
        embedding_bits=4,
        context=8,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "temperature", "storage"),
    [("parallel", 0.0, Storage.BRAM), ("serial", 0.8, Storage.SPRAM)],
)
def test_lm_core_generates_as_the_golden_model(kind, temperature, storage):
    model = small_rnn()
    prompt = bytes(CHARS.index(c) for c in TEXT[:30])
    plan = RNNPlan(
        kind=kind,
        embedding=LayerPlan(storage, 1, 5),
        cell=LayerPlan(storage, 2, 4),
        unembedder=LayerPlan(storage, 2, 3),
    )
    selection = Selection.sampled(temperature, -3, seed=99)
    r = simulate_lm(model, prompt, 300, plan=plan, selection=selection, seed=4, check_logits=40)
    assert r.steps == 330 and r.mismatches == 0, r.first_mismatch
    assert r.logit_chunks_checked == 40 * -(-len(CHARS) // 3) and r.logit_mismatches == 0
    assert r.generated.encode("latin-1") == generate_rnn(model, prompt, 301, selection)[:300]
    assert len(set(r.generated)) > 3
    assert r.cycles_per_token >= r.table_cycles_per_token
    print(f"lm {kind}: {r.cycles_per_token:.1f} cycles/token, {r.cycles_per_second:,.0f} cycles/s")
