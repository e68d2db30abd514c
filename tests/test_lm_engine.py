"""The compiled LM kernels against a slow pure-numpy statement of the same rule."""

from __future__ import annotations

import numpy as np
import pytest

from spikelut.compiler.ir.sequence import SpikingRNN, TransformerLM
from spikelut.compiler.train.lm_engine import (
    RNNEngine,
    TransformerEngine,
    _attn_backward,
    _attn_index,
)

TINY = dict(context=8, dim=8, n_layers=1, n_heads=1, n_tables=2, n_c=3, n_pe=2)
F32 = np.float32


# -- slow reference ---------------------------------------------------------------------


def ref_index(x, a, b):
    """Per table: index, least certain pair (first smallest |u|), its u."""
    out = []
    for i in range(a.shape[0]):
        u = (x[a[i]] - x[b[i]]).astype(F32)
        j = sum(1 << r for r in range(len(u)) if u[r] > 0)
        r = int(np.argmin(np.abs(u)))
        out.append((j, r, u[r]))
    return out


def ref_up(u):
    s = 1.0 if u > 0 else -1.0
    return -0.5 * s / (1.0 + abs(float(u))) ** 2


def ref_lut_backward(S, a, b, cache, gx, gy, lr):
    for i, (j, r, u) in enumerate(cache):
        g = F32(0)
        for k in range(len(gy)):
            g = F32(g + F32(gy[k] * F32(S[i, j ^ (1 << r), k] - S[i, j, k])))
        v = F32(float(g) * ref_up(u))
        gx[a[i, r]] = F32(gx[a[i, r]] + v)
        gx[b[i, r]] = F32(gx[b[i, r]] - v)
        S[i, j] = (S[i, j] - F32(lr) * gy).astype(F32)


def ref_softmax(x):
    e = np.exp((x - x.max()).astype(F32)).astype(F32)
    return (e / F32(e.sum(dtype=F32))).astype(F32)


def ref_transformer_step(m: TransformerLM, tokens, target, lr):
    """Forward, cross-entropy gradient, backward and updates of one window; returns logits."""
    C, L, H = m.context, m.n_layers, m.n_heads
    n_c, n_p = m.n_c, m.n_pe
    z = m.embedding[tokens].astype(F32)
    caches = {}
    for layer in range(L):
        x = z.copy()
        for h in range(H):
            a, b, S, pe = (
                m.attn_a[layer, h],
                m.attn_b[layer, h],
                m.attn_tables[layer, h],
                m.pe[layer, h],
            )
            q = [ref_index(x[p], a, b) for p in range(C)]
            pc = []
            for d in range(C):
                u = pe[d].astype(F32)
                pc.append(
                    [
                        (
                            sum(1 << r for r in range(n_p) if u[i, r] > 0),
                            int(np.argmin(np.abs(u[i]))),
                            u[i, int(np.argmin(np.abs(u[i])))],
                        )
                        for i in range(len(u))
                    ]
                )
            caches[layer, h] = (q, pc)
            for pos in range(1, C):
                for pos1 in range(pos):
                    for i in range(S.shape[0]):
                        row = (
                            (q[pos][i][0] << (n_c + n_p))
                            | (q[pos1][i][0] << n_p)
                            | pc[pos - pos1][i][0]
                        )
                        z[pos] = (z[pos] + S[i, row]).astype(F32)
        fc = []
        for pos in range(C):
            c = ref_index(z[pos], m.ffn_a[layer], m.ffn_b[layer])
            fc.append(c)
            for i, (j, _, _) in enumerate(c):
                z[pos] = (z[pos] + m.ffn_tables[layer, i, j]).astype(F32)
        caches[layer, "ffn"] = fc
    out = np.zeros((C, m.vocab), F32)
    uc = []
    for pos in range(C):
        c = ref_index(z[pos], m.unemb_a, m.unemb_b)
        uc.append(c)
        for i, (j, _, _) in enumerate(c):
            out[pos] = (out[pos] + m.unemb_tables[i, j]).astype(F32)
    logits = out.copy()
    grad = np.stack([ref_softmax(out[p]) for p in range(C)])
    grad[np.arange(C), target] -= F32(1)
    gx = np.zeros((C, m.dim), F32)
    for pos in range(C):
        ref_lut_backward(m.unemb_tables, m.unemb_a, m.unemb_b, uc[pos], gx[pos], grad[pos], lr)
    for layer in reversed(range(L)):
        gy = gx.copy()
        for pos in range(C):
            ref_lut_backward(
                m.ffn_tables[layer],
                m.ffn_a[layer],
                m.ffn_b[layer],
                caches[layer, "ffn"][pos],
                gx[pos],
                gy[pos],
                lr,
            )
        gy = gx.copy()
        for h in range(H):
            a, b, S, pe = (
                m.attn_a[layer, h],
                m.attn_b[layer, h],
                m.attn_tables[layer, h],
                m.pe[layer, h],
            )
            q, pc = caches[layer, h]
            pe_grad = np.zeros_like(pe)
            for pos in range(1, C):
                for pos1 in range(pos):
                    d = pos - pos1
                    for i in range(S.shape[0]):
                        (jq, rq, uq), (jk, rk, uk), (jp, rp, up) = q[pos][i], q[pos1][i], pc[d][i]
                        j = (jq << (n_c + n_p)) | (jk << n_p) | jp
                        if abs(uq) < abs(uk):  # flip the query bit
                            jb, r, u, tgt = j ^ (1 << (rq + n_c + n_p)), rq, uq, pos
                        else:  # flip the key bit
                            jb, r, u, tgt = j ^ (1 << (rk + n_p)), rk, uk, pos1
                        g = F32(0)
                        for k in range(m.dim):
                            g = F32(g + F32(gy[pos, k] * F32(S[i, jb, k] - S[i, j, k])))
                        v = F32(float(g) * ref_up(u))
                        gx[tgt, a[i, r]] = F32(gx[tgt, a[i, r]] + v)
                        gx[tgt, b[i, r]] = F32(gx[tgt, b[i, r]] - v)
                        if abs(up) < abs(uq) and abs(up) < abs(uk):
                            g = F32(0)
                            for k in range(m.dim):
                                g = F32(
                                    g + F32(gy[pos, k] * F32(S[i, j ^ (1 << rp), k] - S[i, j, k]))
                                )
                            pe_grad[d, i, rp] = F32(pe_grad[d, i, rp] + F32(float(g) * ref_up(up)))
                        S[i, j] = (S[i, j] - F32(lr) * gy[pos]).astype(F32)
            pe -= (F32(lr) * pe_grad).astype(F32)
    return logits


def _copy(m: TransformerLM) -> TransformerLM:
    h, arrays = m.to_arrays()
    return TransformerLM.from_arrays(h, {k: v.copy() for k, v in arrays.items()})


# -- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_transformer_steps_match_reference(fast):
    rng = np.random.default_rng(5)
    m = TransformerLM.create(rng=rng, **TINY)
    # non-zero tables so that every gradient term matters from the first step
    m.attn_tables[:] = rng.normal(0, 0.3, m.attn_tables.shape)
    m.ffn_tables[:] = rng.normal(0, 0.3, m.ffn_tables.shape)
    m.unemb_tables[:] = rng.normal(0, 0.3, m.unemb_tables.shape)
    ref = _copy(m)
    data = rng.integers(0, 256, 400).astype(np.uint8)
    eng = TransformerEngine(m, fast=fast)
    starts = [3, 50, 121, 7]
    for s in starts:
        logits = eng.logits(data[s : s + 8])
        want = ref_transformer_step(ref, data[s : s + 8], data[s + 1 : s + 9], 0.05)
        np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-5)
        eng.train(data, [s], [0.05])
    for name in ("attn_tables", "pe", "ffn_tables", "unemb_tables"):
        np.testing.assert_allclose(getattr(m, name), getattr(ref, name), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(m.pe, TransformerLM.create(rng=np.random.default_rng(5), **TINY).pe)


def test_validation_is_mean_neg_log_p_of_next_byte():
    rng = np.random.default_rng(1)
    m = TransformerLM.create(rng=rng, **TINY)
    m.unemb_tables[:] = rng.normal(0, 1, m.unemb_tables.shape)
    m.attn_tables[:] = rng.normal(0, 0.3, m.attn_tables.shape)
    data = rng.integers(0, 256, 300).astype(np.uint8)
    eng = TransformerEngine(m)
    starts = np.array([0, 10, 99])
    want = []
    for s in starts:
        p = ref_softmax(eng.logits(data[s : s + 8])[-1])
        want.append(-np.log(float(p[data[s + 8]])))
    assert eng.validate(data, starts) == pytest.approx(np.mean(want), rel=1e-5)
    # the last-position-only forward gives the same last row as the full one
    np.testing.assert_array_equal(eng.logits(data[:8], last_only=True)[0], eng.logits(data[:8])[-1])


def _attn_case(xq, xk, pe_u, s_rows):
    """One table, N_C = 1, P = 1, context 2: the single pair (pos 1, pos1 0)."""
    a = np.array([[0]], np.int32)
    b = np.array([[1]], np.int32)
    x = np.array([xk, xq], F32)  # x[0] is the key position, x[1] the query
    pe = np.array([[[0.5]], [[pe_u]]], F32)  # pe[d=1] is used
    S = np.zeros((1, 8, 2), F32)
    for row, val in s_rows.items():
        S[0, row] = val
    cache = [np.zeros((2, 1), t) for t in (np.int32, np.int32, F32)]
    pcache = [np.zeros((2, 1), t) for t in (np.int32, np.int32, F32)]
    _attn_index(x, a, b, pe, *cache, *pcache)
    gx = np.zeros((2, 2), F32)
    gy = np.array([[0, 0], [1, 0]], F32)
    pe_grad = np.zeros((2, 1, 1), F32)
    _attn_backward(S, a, b, pe, *cache, *pcache, gx, gy, pe_grad, F32(0.1), True)
    return gx, pe, S


def test_attention_rule_flips_query_and_pe_bits():
    # uQ = 0.2 (jQ 1), uK = -0.5 (jK 0), uPE = 0.1 (jPE 1): row 0b101 = 5
    # |uQ| < |uK| -> flip Q: row 0b001; |uPE| smallest -> also flip PE: row 0b100
    gx, pe, S = _attn_case((0.3, 0.1), (-0.5, 0.0), 0.1, {5: (1, 0), 1: (3, 0), 4: (-1, 0)})
    v = 2.0 * (-0.5 / 1.2**2)  # g = 1 * (3 - 1), U'(0.2)
    np.testing.assert_allclose(gx[1], [v, -v], rtol=1e-6)
    np.testing.assert_array_equal(gx[0], [0, 0])
    dpe = -2.0 * (-0.5 / 1.1**2)  # g = 1 * (-1 - 1), U'(0.1)
    np.testing.assert_allclose(pe[1, 0, 0], 0.1 - 0.1 * dpe, rtol=1e-6)
    np.testing.assert_allclose(S[0, 5], [0.9, 0], rtol=1e-6)  # row updated after the reads


def test_attention_rule_flips_key_bit_on_tie_and_skips_pe():
    # |uQ| = |uK| = 0.2: the key bit flips (strict comparison); |uPE| = 0.9 is not smallest
    gx, pe, _ = _attn_case((0.3, 0.1), (0.0, 0.2), 0.9, {5: (1, 0), 7: (4, 0)})
    # jQ 1, jK 0, jPE 1 -> row 5; key flipped -> row 0b111 = 7; uK = -0.2, sign -> -1
    v = 3.0 * (0.5 / 1.2**2)
    np.testing.assert_allclose(gx[0], [v, -v], rtol=1e-6)
    np.testing.assert_array_equal(gx[1], [0, 0])
    assert pe[1, 0, 0] == F32(0.9)


def ref_rnn_step(m: SpikingRNN, tokens, target, lr):
    T, D = len(tokens), m.dim
    h = np.zeros((T, D), F32)
    prev = np.zeros(D, F32)
    cc, uc = [], []
    out = np.zeros((T, m.vocab), F32)
    for t in range(T):
        c = ref_index(prev, m.cell.a, m.cell.b)
        cc.append(c)
        h[t] = m.embedding[tokens[t]]
        for i, (j, _, _) in enumerate(c):
            h[t] = (h[t] + m.cell.tables[i, j]).astype(F32)
        c = ref_index(h[t], m.unembedder.a, m.unembedder.b)
        uc.append(c)
        for i, (j, _, _) in enumerate(c):
            out[t] = (out[t] + m.unembedder.tables[i, j]).astype(F32)
        prev = h[t]
    logits = out.copy()
    grad = np.stack([ref_softmax(o) for o in out])
    grad[np.arange(T), target] -= F32(1)
    gh = np.zeros((T, D), F32)
    for t in range(T):
        ref_lut_backward(
            m.unembedder.tables, m.unembedder.a, m.unembedder.b, uc[t], gh[t], grad[t], lr
        )
    for t in reversed(range(T)):
        gx = gh[t - 1] if t else np.zeros(D, F32)
        ref_lut_backward(m.cell.tables, m.cell.a, m.cell.b, cc[t], gx, gh[t], lr)
    return logits


def test_rnn_steps_match_reference():
    rng = np.random.default_rng(2)
    m = SpikingRNN.create(rng=rng, context=6, vocab=256, dim=8, n_tables=3, n_c=3)
    m.cell.tables[:] = rng.normal(0, 0.3, m.cell.tables.shape)
    m.unembedder.tables[:] = rng.normal(0, 0.3, m.unembedder.tables.shape)
    h, arrays = m.to_arrays()
    ref = SpikingRNN.from_arrays(h, {k: v.copy() for k, v in arrays.items()})
    cell0 = m.cell.tables.copy()
    data = rng.integers(0, 256, 200).astype(np.uint8)
    eng = RNNEngine(m)
    for s in (0, 40, 77):
        logits, _ = eng.logits(data[s : s + 6])
        want = ref_rnn_step(ref, data[s : s + 6], data[s + 1 : s + 7], 0.1)
        np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-5)
        eng.train(data, [s], [0.1])
    np.testing.assert_allclose(m.cell.tables, ref.cell.tables, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.unembedder.tables, ref.unembedder.tables, rtol=1e-5, atol=1e-6)
    assert np.abs(m.cell.tables - cell0).max() > 0  # the cell did learn


def _trained(fast, workers, steps=600):
    rng = np.random.default_rng(3)
    m = TransformerLM.create(rng=rng, **TINY)
    data = np.frombuffer(b"spikes and tables. " * 60, np.uint8)
    eng = TransformerEngine(m, fast=fast, workers=workers)
    starts = rng.integers(0, len(data) - 9, steps)
    eng.train(data, starts, np.full(steps, 0.05, np.float32))
    return m, eng.validate(data, np.arange(0, len(data) - 9, 7))


def test_fast_mode_with_one_worker_is_the_faithful_step():
    faithful, loss_f = _trained(False, None)
    fast, loss_1 = _trained(True, 1)
    np.testing.assert_array_equal(fast.attn_tables, faithful.attn_tables)
    np.testing.assert_array_equal(fast.unemb_tables, faithful.unemb_tables)
    assert loss_1 == loss_f


def test_fast_mode_workers_share_the_tables_and_learn():
    untrained = TransformerLM.create(rng=np.random.default_rng(3), **TINY)
    m, loss = _trained(True, 2)
    _, loss_f = _trained(False, None)
    # both workers wrote into the one set of tables, and the text (period 19) is learnt
    # about as well as by the faithful run on the same windows (untrained: ln 256 = 5.5)
    assert not np.array_equal(m.attn_tables, untrained.attn_tables)
    assert loss_f < 1.0 and abs(loss - loss_f) < 0.25, (loss, loss_f)


def test_deal_is_round_robin():
    from spikelut.compiler.train.lm_engine import _deal

    items, counts = _deal(np.arange(7), 3)
    assert counts.tolist() == [3, 2, 2]
    assert items.tolist() == [[0, 3, 6], [1, 4, 0], [2, 5, 0]]


def test_workers_out_of_range_is_refused():
    m = TransformerLM.create(rng=np.random.default_rng(0), **TINY)
    with pytest.raises(ValueError, match="workers must be"):
        TransformerEngine(m, fast=True, workers=0)
