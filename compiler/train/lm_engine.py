"""Compiled (numba) forward and backward passes of the sequence models.

The kernels follow the rule of :mod:`spikelut.compiler.train.engine` and the C reference (``izhikevich/SNN``) operation
for operation, in float32 with the reference's order of additions and updates:

- index: ``u = x[a] - x[b]``; bit set iff ``u > 0``; the least certain pair is the first
  with the smallest ``|u|`` (strict ``<``, starting from ``+inf``; pair 0 if none is finite).
- backward per table: ``g = sum_k gy[k] * (S[jbar][k] - S[j][k])`` (float32, k ascending),
  ``v = float32(g * U'(u))`` with ``U'`` in double and ``sign(0) = -1``, then
  ``gx[a] += v``, ``gx[b] -= v``, and only then ``S[j] -= lr * gy``.
- attention: see :mod:`spikelut.compiler.ir.sequence` for the row layout; backward visits
  ``pos = 1..C-1``, ``pos1 = 0..pos-1``, tables in order, flips the Q bit when
  ``|uQ| < |uK|`` and the K bit otherwise, adds the PE gradient when ``|uPE|`` is strictly
  smaller than both, updates the row, and updates the head's positional encodings after
  all pairs.

Fast mode (``fast=True``) is asynchronous data-parallel SGD ("Hogwild!"): ``workers``
threads (one per core by default) each run the faithful step on their own windows at once,
reading and updating the shared tables without locks. Each step's arithmetic is the
faithful one, but a worker may read a row while another updates it, and two updates of one
row at the same instant can lose one of them; the 3 GiB of attention rows make that rare,
the small FFN and unembedder tables see it more often. Runs are therefore not reproducible
bit for bit (the seed still fixes the initialisation and the windows); with one worker fast
mode is the faithful mode.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from spikelut.compiler.ir.sequence import SpikingRNN, TransformerLM
from spikelut.compiler.train.prefetch import prefetch_row

_F32_INF = np.float32(np.inf)
# attention tables prefetched ahead of the one being read: enough to cover a memory
# latency, few enough that the rows are still in cache when they are read
_AHEAD = 4


# ---------------------------------------------------------------------------------------
# LUT primitives


@njit(cache=True, inline="always")
def _up(u):
    """U'(u) = -0.5 sign(u) / (1 + |u|)^2 in double, sign(0) = -1 (as the reference)."""
    s = 1.0 if u > 0 else -1.0
    d = 1.0 + abs(np.float64(u))
    return (-0.5 * s) / d / d


@njit(cache=True)
def _index(x, a, b, cj, cr, cu):
    """Index, least certain pair and its u of every table of a LUT for input ``x``."""
    n_t, n_c = a.shape
    for i in range(n_t):
        j = 0
        rmin = 0
        umin = _F32_INF
        for r in range(n_c):
            u = x[a[i, r]] - x[b[i, r]]
            if u > 0:
                j |= 1 << r
            if abs(u) < abs(umin):
                rmin = r
                umin = u
        cj[i] = j
        cr[i] = rmin
        cu[i] = umin


@njit(cache=True)
def _pe_index(pe, cj, cr, cu):
    """Positional index of every table: bit r set iff ``pe[i][r] > 0`` (no anchors)."""
    n_t, n_p = pe.shape
    for i in range(n_t):
        j = 0
        rmin = 0
        umin = _F32_INF
        for r in range(n_p):
            u = pe[i, r]
            if u > 0:
                j |= 1 << r
            if abs(u) < abs(umin):
                rmin = r
                umin = u
        cj[i] = j
        cr[i] = rmin
        cu[i] = umin


@njit(cache=True)
def _lut_add(S, cj, y):
    """``y += sum_i S[i][cj[i]]`` (tables in order)."""
    n_t, _, n_y = S.shape
    for i in range(n_t):
        row = cj[i]
        for k in range(n_y):
            y[k] += S[i, row, k]


@njit(cache=True)
def _gdiff(S, i, jb, j, gy):
    g = np.float32(0.0)
    for k in range(gy.shape[0]):
        g += gy[k] * (S[i, jb, k] - S[i, j, k])
    return g


@njit(cache=True)
def _row_update(S, i, j, gy, lr):
    for k in range(gy.shape[0]):
        S[i, j, k] -= lr * gy[k]


@njit(cache=True)
def _lut_backward(S, a, b, cj, cr, cu, gx, gy, lr):
    """Backward of one LUT evaluation: adds into ``gx``, updates the selected rows."""
    for i in range(S.shape[0]):
        j = cj[i]
        r = cr[i]
        g = _gdiff(S, i, j ^ (1 << r), j, gy)
        v = np.float32(g * _up(cu[i]))
        gx[a[i, r]] += v
        gx[b[i, r]] -= v
        _row_update(S, i, j, gy, lr)


# ---------------------------------------------------------------------------------------
# attention head


@njit(cache=True)
def _attn_index(x, a, b, pe, qj, qr, qu, pj, pr, pu):
    for pos in range(x.shape[0]):
        _index(x[pos], a, b, qj[pos], qr[pos], qu[pos])
    for d in range(pe.shape[0]):
        _pe_index(pe[d], pj[d], pr[d], pu[d])


@njit(cache=True, inline="always")
def _attn_row(qj, pj, pos, pos1, i, n_c, n_p):
    """Row of table ``i`` read for query position ``pos`` and key position ``pos1``."""
    return (qj[pos, i] << (n_c + n_p)) | (qj[pos1, i] << n_p) | pj[pos - pos1, i]


@njit(cache=True, inline="always")
def _next_pair(pos, pos1):
    """The (pos, pos1) pair visited after this one (``pos1 < pos``, pos1 fastest)."""
    if pos1 + 1 < pos:
        return pos, pos1 + 1
    return pos + 1, 0


@njit(cache=True)
def _attn_add(S, qj, pj, n_c, n_p, y, pos_from):
    """``y[pos] += sum_{pos1<pos} sum_i S[i][row]`` for ``pos >= pos_from``.

    The row ``_AHEAD`` tables further on (into the next pair) is prefetched.
    """
    n_t = S.shape[0]
    n_y = S.shape[2]
    ctx = y.shape[0]
    for pos in range(max(pos_from, 1), ctx):
        for pos1 in range(pos):
            npos, npos1 = _next_pair(pos, pos1)
            for i in range(n_t):
                ia = i + _AHEAD
                if ia < n_t:
                    prefetch_row(S, ia, _attn_row(qj, pj, pos, pos1, ia, n_c, n_p))
                elif npos < ctx and ia - n_t < n_t:
                    ia -= n_t
                    prefetch_row(S, ia, _attn_row(qj, pj, npos, npos1, ia, n_c, n_p))
                row = _attn_row(qj, pj, pos, pos1, i, n_c, n_p)
                for k in range(n_y):
                    y[pos, k] += S[i, row, k]


@njit(cache=True, inline="always")
def _prefetch_backward(S, qj, qr, qu, pj, pos, pos1, i, n_c, n_p, need_gx):
    """Prefetch the rows the backward of table ``i`` at (pos, pos1) reads."""
    prefetch_row(S, i, _attn_row(qj, pj, pos, pos1, i, n_c, n_p))
    if need_gx:
        jq = qj[pos, i]
        jk = qj[pos1, i]
        if abs(qu[pos, i]) < abs(qu[pos1, i]):
            jq ^= 1 << qr[pos, i]
        else:
            jk ^= 1 << qr[pos1, i]
        prefetch_row(S, i, (jq << (n_c + n_p)) | (jk << n_p) | pj[pos - pos1, i])


@njit(cache=True)
def _attn_backward(S, a, b, pe, qj, qr, qu, pj, pr, pu, gx, gy, pe_grad, lr, need_gx):  # noqa: C901 - one numba loop nest, the C reference's order of updates
    """Backward of one head (reference order); updates its rows and positional codes.

    ``need_gx=False`` skips the input gradient (the first layer's, which nothing reads:
    the embedding is not trained); tables and codes get the same updates either way.
    """
    n_t = S.shape[0]
    n_c = a.shape[1]
    n_p = pe.shape[2]
    ctx = gy.shape[0]
    pe_grad[:] = 0
    for pos in range(1, ctx):
        gyp = gy[pos]
        for pos1 in range(pos):
            d = pos - pos1
            npos, npos1 = _next_pair(pos, pos1)
            for i in range(n_t):
                ia = i + _AHEAD
                if ia < n_t:
                    _prefetch_backward(S, qj, qr, qu, pj, pos, pos1, ia, n_c, n_p, need_gx)
                elif npos < ctx and ia - n_t < n_t:
                    ia -= n_t
                    _prefetch_backward(S, qj, qr, qu, pj, npos, npos1, ia, n_c, n_p, need_gx)
                jq = qj[pos, i]
                jk = qj[pos1, i]
                jp = pj[d, i]
                j = (jq << (n_c + n_p)) | (jk << n_p) | jp
                uq = qu[pos, i]
                uk = qu[pos1, i]
                if not need_gx:
                    pass
                elif abs(uq) < abs(uk):
                    r = qr[pos, i]
                    jb = ((jq ^ (1 << r)) << (n_c + n_p)) | (jk << n_p) | jp
                    v = np.float32(_gdiff(S, i, jb, j, gyp) * _up(uq))
                    gx[pos, a[i, r]] += v
                    gx[pos, b[i, r]] -= v
                else:
                    r = qr[pos1, i]
                    jb = (jq << (n_c + n_p)) | ((jk ^ (1 << r)) << n_p) | jp
                    v = np.float32(_gdiff(S, i, jb, j, gyp) * _up(uk))
                    gx[pos1, a[i, r]] += v
                    gx[pos1, b[i, r]] -= v
                up = pu[d, i]
                if abs(up) < abs(uq) and abs(up) < abs(uk):
                    rp = pr[d, i]
                    dpe = np.float32(_gdiff(S, i, j ^ (1 << rp), j, gyp) * _up(up))
                    pe_grad[d, i, rp] += dpe
                _row_update(S, i, j, gyp, lr)
    for d in range(ctx):
        for i in range(n_t):
            for k in range(n_p):
                pe[d, i, k] -= lr * pe_grad[d, i, k]


# ---------------------------------------------------------------------------------------
# transformer


@njit(cache=True)
def _softmax_(x, temperature):
    """In-place float32 softmax (max-shifted, as the reference)."""
    m = x[0]
    for k in range(1, x.shape[0]):
        if x[k] > m:
            m = x[k]
    s = np.float32(0.0)
    for k in range(x.shape[0]):
        x[k] = np.exp((x[k] - m) / temperature)
        s += x[k]
    for k in range(x.shape[0]):
        x[k] /= s


@njit(cache=True)
def _heads_forward(layer, P, W, pos_from):
    """The heads of layer ``layer`` one after the other, each adding into the stream."""
    (_emb, attn_a, attn_b, attn_S, pe, _ffn_a, _ffn_b, _ffn_S, _un_a, _un_b, _un_S) = P
    z, x, qj, qr, qu, pj, pr, pu = W[:8]
    n_h, _, n_c = attn_a.shape[1:]
    n_p = pe.shape[4]
    for h in range(n_h):
        _attn_index(
            x,
            attn_a[layer, h],
            attn_b[layer, h],
            pe[layer, h],
            qj[layer, h],
            qr[layer, h],
            qu[layer, h],
            pj[layer, h],
            pr[layer, h],
            pu[layer, h],
        )
        _attn_add(attn_S[layer, h], qj[layer, h], pj[layer, h], n_c, n_p, z, pos_from)


@njit(cache=True)
def _heads_backward(layer, P, W, lr):
    """Backward of the heads of layer ``layer`` one after the other (reference order)."""
    (_emb, attn_a, attn_b, attn_S, pe, _ffn_a, _ffn_b, _ffn_S, _un_a, _un_b, _un_S) = P
    _z, _x, qj, qr, qu, pj, pr, pu = W[:8]
    gx, gy, pe_grad = W[15], W[16], W[17]
    for h in range(attn_a.shape[1]):
        _attn_backward(
            attn_S[layer, h],
            attn_a[layer, h],
            attn_b[layer, h],
            pe[layer, h],
            qj[layer, h],
            qr[layer, h],
            qu[layer, h],
            pj[layer, h],
            pr[layer, h],
            pu[layer, h],
            gx,
            gy,
            pe_grad[h],
            lr,
            layer > 0,
        )


@njit(cache=True)
def _tf_forward(tokens, P, W, last_only):
    """Forward of one window; logits in ``W.out``; caches in ``W`` for the backward."""
    emb, ffn_a, ffn_b, ffn_S, un_a, un_b, un_S = P[0], P[5], P[6], P[7], P[8], P[9], P[10]
    z, x = W[0], W[1]
    fj, fr, fu, uj, ur, uu, out = W[8], W[9], W[10], W[11], W[12], W[13], W[14]
    ctx = z.shape[0]
    n_l = P[1].shape[0]
    for pos in range(ctx):
        z[pos, :] = emb[tokens[pos]]
    for layer in range(n_l):
        x[:, :] = z
        pos_from = ctx - 1 if (last_only and layer == n_l - 1) else 0
        _heads_forward(layer, P, W, pos_from)
        for pos in range(pos_from, ctx):
            _index(
                z[pos], ffn_a[layer], ffn_b[layer], fj[layer, pos], fr[layer, pos], fu[layer, pos]
            )
            _lut_add(ffn_S[layer], fj[layer, pos], z[pos])
    pos_from = ctx - 1 if last_only else 0
    for pos in range(pos_from, ctx):
        out[pos, :] = 0
        _index(z[pos], un_a, un_b, uj[pos], ur[pos], uu[pos])
        _lut_add(un_S, uj[pos], out[pos])


@njit(cache=True)
def _tf_backward(P, W, lr):
    """Backward of the last forward; ``W.out`` holds dL/dlogits. Updates ``P`` in place."""
    ffn_a, ffn_b, ffn_S, un_a, un_b, un_S = P[5], P[6], P[7], P[8], P[9], P[10]
    fj, fr, fu, uj, ur, uu, out = W[8], W[9], W[10], W[11], W[12], W[13], W[14]
    gx, gy = W[15], W[16]
    ctx = gx.shape[0]
    n_l = P[1].shape[0]
    gx[:, :] = 0
    for pos in range(ctx):
        _lut_backward(un_S, un_a, un_b, uj[pos], ur[pos], uu[pos], gx[pos], out[pos], lr)
    for layer in range(n_l - 1, -1, -1):
        gy[:, :] = gx
        for pos in range(ctx):
            _lut_backward(
                ffn_S[layer],
                ffn_a[layer],
                ffn_b[layer],
                fj[layer, pos],
                fr[layer, pos],
                fu[layer, pos],
                gx[pos],
                gy[pos],
                lr,
            )
        gy[:, :] = gx
        _heads_backward(layer, P, W, lr)


@njit(cache=True)
def _xent_grad(out, targets):
    """Turn logits into dL/dlogits (softmax - onehot), in place; returns the summed loss."""
    loss = 0.0
    for pos in range(out.shape[0]):
        _softmax_(out[pos], np.float32(1.0))
        loss -= np.log(max(np.float64(out[pos, targets[pos]]), 1e-30))
        out[pos, targets[pos]] -= np.float32(1.0)
    return loss


@njit(cache=True)
def _tf_train_steps(data, starts, lrs, P, W):
    """Train on the windows ``data[s : s + C + 1]`` for ``s`` in ``starts``, one step each."""
    ctx = W[0].shape[0]
    loss = 0.0
    for n in range(starts.shape[0]):
        s = starts[n]
        tokens = data[s : s + ctx]
        _tf_forward(tokens, P, W, False)
        loss += _xent_grad(W[14], data[s + 1 : s + ctx + 1]) / ctx
        _tf_backward(P, W, lrs[n])
    return loss


@njit(cache=True)
def _tf_validate(data, starts, P, W):
    """Sum (float32, in order, as the reference) of -ln p(byte after the window)."""
    ctx = W[0].shape[0]
    out = W[14]
    total = np.float32(0.0)
    for n in range(starts.shape[0]):
        s = starts[n]
        _tf_forward(data[s : s + ctx], P, W, True)
        _softmax_(out[ctx - 1], np.float32(1.0))
        total = np.float32(total - np.log(np.float64(out[ctx - 1, data[s + ctx]])))
    return total


@njit(parallel=True, cache=True)
def _tf_train_async(data, starts, counts, lrs, P, WK):
    """Fast mode: worker ``w`` trains on ``starts[w, :counts[w]]`` with the faithful step,
    all workers at once on the shared tables ``P`` (no locks); returns the summed loss."""
    n_w = starts.shape[0]
    losses = np.zeros(n_w)
    for w in prange(n_w):
        W = _worker(WK, w)
        losses[w] = _tf_train_steps(data, starts[w, : counts[w]], lrs[w, : counts[w]], P, W)
    return losses.sum()


@njit(parallel=True, cache=True)
def _tf_validate_async(data, starts, counts, P, WK):
    """Fast mode: the validation windows split over the workers (forward only)."""
    n_w = starts.shape[0]
    totals = np.zeros(n_w, np.float32)
    for w in prange(n_w):
        totals[w] = _tf_validate(data, starts[w, : counts[w]], P, _worker(WK, w))
    return totals.sum()


@njit(inline="always")
def _worker(WK, w):
    """Worker ``w``'s work buffers from the stacked ones."""
    return (
        WK[0][w],
        WK[1][w],
        WK[2][w],
        WK[3][w],
        WK[4][w],
        WK[5][w],
        WK[6][w],
        WK[7][w],
        WK[8][w],
        WK[9][w],
        WK[10][w],
        WK[11][w],
        WK[12][w],
        WK[13][w],
        WK[14][w],
        WK[15][w],
        WK[16][w],
        WK[17][w],
    )


def _deal(items: np.ndarray, n_workers: int) -> tuple[np.ndarray, np.ndarray]:
    """``items`` dealt round-robin to the workers: a (workers, ceil(n/workers)) array, padded
    with zeros, and how many each worker holds. Item ``g`` goes to worker ``g % workers``."""
    n = len(items)
    per = -(-n // n_workers)
    out = np.zeros((n_workers, per), items.dtype)
    counts = np.zeros(n_workers, np.int64)
    for w in range(n_workers):
        part = items[w::n_workers]
        out[w, : len(part)] = part
        counts[w] = len(part)
    return out, counts


class TransformerEngine:
    """Training and inference of a :class:`TransformerLM` with the compiled kernels.

    The engine trains the model's arrays in place. ``fast`` selects asynchronous training
    with ``workers`` workers (default: numba's thread count, one per core; see the module
    docstring); with one worker it is the faithful step.
    """

    def __init__(
        self, model: TransformerLM, *, fast: bool = False, workers: int | None = None
    ) -> None:
        self.model = model
        self.fast = bool(fast)
        self.workers = _workers(workers) if self.fast else 1
        m = model
        for name in ("attn_tables", "pe", "ffn_tables", "unemb_tables", "embedding"):
            arr = getattr(m, name)
            if arr.dtype != np.float32 or not arr.flags.c_contiguous or not arr.flags.writeable:
                setattr(m, name, np.ascontiguousarray(arr, np.float32))
        for name in ("attn_a", "attn_b", "ffn_a", "ffn_b", "unemb_a", "unemb_b"):
            setattr(m, name, np.ascontiguousarray(getattr(m, name), np.int32))
        C, E, V = m.context, m.dim, m.vocab
        L, H, NT = m.n_layers, m.n_heads, m.n_tables
        i32, f32 = np.int32, np.float32
        self._params = (
            m.embedding,
            m.attn_a,
            m.attn_b,
            m.attn_tables,
            m.pe,
            m.ffn_a,
            m.ffn_b,
            m.ffn_tables,
            m.unemb_a,
            m.unemb_b,
            m.unemb_tables,
        )
        self._work = (
            np.zeros((C, E), f32),  # z
            np.zeros((C, E), f32),  # x
            np.zeros((L, H, C, NT), i32),  # qj
            np.zeros((L, H, C, NT), i32),  # qr
            np.zeros((L, H, C, NT), f32),  # qu
            np.zeros((L, H, C, NT), i32),  # pj
            np.zeros((L, H, C, NT), i32),  # pr
            np.zeros((L, H, C, NT), f32),  # pu
            np.zeros((L, C, NT), i32),  # fj
            np.zeros((L, C, NT), i32),  # fr
            np.zeros((L, C, NT), f32),  # fu
            np.zeros((C, NT), i32),  # uj
            np.zeros((C, NT), i32),  # ur
            np.zeros((C, NT), f32),  # uu
            np.zeros((C, V), f32),  # out
            np.zeros((C, E), f32),  # gx
            np.zeros((C, E), f32),  # gy
            np.zeros((H, C, NT, m.n_pe), f32),  # pe_grad
        )
        # fast mode: one set of work buffers per worker, stacked
        self._stacked = tuple(np.zeros((self.workers, *w.shape), w.dtype) for w in self._work)

    def train(self, data: np.ndarray, starts: np.ndarray, lrs: np.ndarray) -> float:
        """One SGD step per window start; returns the summed mean-per-window training loss.

        In fast mode step ``g`` of the call goes to worker ``g % workers`` with its rate.
        """
        data = _as_u8(data)
        starts = np.asarray(starts, np.int64)
        lrs = np.asarray(lrs, np.float32)
        if self.workers == 1 or len(starts) < 2:
            return float(_tf_train_steps(data, starts, lrs, self._params, self._work))
        s2, counts = _deal(starts, self.workers)
        l2, _ = _deal(lrs, self.workers)
        return float(_tf_train_async(data, s2, counts, l2, self._params, self._stacked))

    def validate(self, data: np.ndarray, starts: np.ndarray) -> float:
        """Mean -ln p of the byte after each window (float32 accumulation as the reference;
        in fast mode one float32 sum per worker, added at the end)."""
        starts = np.asarray(starts, np.int64)
        if self.workers == 1 or len(starts) < 2:
            total = _tf_validate(_as_u8(data), starts, self._params, self._work)
        else:
            s2, counts = _deal(starts, self.workers)
            total = _tf_validate_async(_as_u8(data), s2, counts, self._params, self._stacked)
        return float(np.float32(total) / np.float32(len(starts)))

    def logits(self, tokens: np.ndarray, *, last_only: bool = False) -> np.ndarray:
        """Logits (C, V) for a window of C tokens (only the last row when ``last_only``)."""
        tokens = _as_u8(tokens)
        if tokens.shape != (self.model.context,):
            raise ValueError(f"need {self.model.context} tokens, not {tokens.shape!r}")
        _tf_forward(tokens, self._params, self._work, last_only)
        out = self._work[14]
        return out[-1:].copy() if last_only else out.copy()

    def next_logits(self, history: np.ndarray) -> np.ndarray:
        """Logits for the byte after ``history`` (left-padded with spaces to C bytes)."""
        C = self.model.context
        h = np.asarray(history, np.uint8)[-C:]
        window = np.full(C, ord(" "), np.uint8)
        window[C - len(h) :] = h
        return self.logits(window, last_only=True)[0]


# ---------------------------------------------------------------------------------------
# spiking RNN


@njit(cache=True)
def _rnn_forward(tokens, emb, ca, cb, cS, ua, ub, uS, h, cj, cr, cu, uj, ur, uu, out, h0):
    """h[t] = emb[tok] + cell(h[t-1]) from h[-1] = h0; out[t] = unembedder(h[t])."""
    prev = h0
    for t in range(tokens.shape[0]):
        _index(prev, ca, cb, cj[t], cr[t], cu[t])
        h[t, :] = emb[tokens[t]]
        _lut_add(cS, cj[t], h[t])
        out[t, :] = 0
        _index(h[t], ua, ub, uj[t], ur[t], uu[t])
        _lut_add(uS, uj[t], out[t])
        prev = h[t]


@njit(cache=True)
def _rnn_train_steps(data, starts, lrs, emb, ca, cb, cS, ua, ub, uS, W):
    (h, cj, cr, cu, uj, ur, uu, out, gh, h0, gdrop) = W
    T = h.shape[0]
    loss = 0.0
    for n in range(starts.shape[0]):
        s = starts[n]
        lr = lrs[n]
        _rnn_forward(
            data[s : s + T], emb, ca, cb, cS, ua, ub, uS, h, cj, cr, cu, uj, ur, uu, out, h0
        )
        loss += _xent_grad(out, data[s + 1 : s + T + 1]) / T
        gh[:, :] = 0
        for t in range(T):
            _lut_backward(uS, ua, ub, uj[t], ur[t], uu[t], gh[t], out[t], lr)
        for t in range(T - 1, -1, -1):
            gdrop[:] = 0
            gx = gh[t - 1] if t > 0 else gdrop
            _lut_backward(cS, ca, cb, cj[t], cr[t], cu[t], gx, gh[t], lr)
    return loss


@njit(cache=True)
def _rnn_validate(data, starts, emb, ca, cb, cS, ua, ub, uS, W):
    (h, cj, cr, cu, uj, ur, uu, out, _gh, h0, _gdrop) = W
    T = h.shape[0]
    total = np.float32(0.0)
    for n in range(starts.shape[0]):
        s = starts[n]
        _rnn_forward(
            data[s : s + T], emb, ca, cb, cS, ua, ub, uS, h, cj, cr, cu, uj, ur, uu, out, h0
        )
        _softmax_(out[T - 1], np.float32(1.0))
        total = np.float32(total - np.log(np.float64(out[T - 1, data[s + T]])))
    return total


class RNNEngine:
    """Training and inference of a :class:`SpikingRNN` (semantics in its docstring)."""

    def __init__(self, model: SpikingRNN, *, fast: bool = False) -> None:
        self.model = model
        self.fast = bool(fast)  # the RNN has no parallel variant; accepted for symmetry
        self._gen: tuple[np.ndarray, np.ndarray] | None = None  # (history, its last state)
        m = model
        self._emb = np.ascontiguousarray(m.embedding, np.float32)
        self._cell = self._lut(m.cell)
        self._unemb = self._lut(m.unembedder)
        T, D, V = m.context, m.dim, m.vocab
        NT_c, NT_u = m.cell.n_tables, m.unembedder.n_tables
        i32, f32 = np.int32, np.float32
        self._work = (
            np.zeros((T, D), f32),
            np.zeros((T, NT_c), i32),
            np.zeros((T, NT_c), i32),
            np.zeros((T, NT_c), f32),
            np.zeros((T, NT_u), i32),
            np.zeros((T, NT_u), i32),
            np.zeros((T, NT_u), f32),
            np.zeros((T, V), f32),
            np.zeros((T, D), f32),
            np.zeros(D, f32),  # h0
            np.zeros(D, f32),
        )

    @staticmethod
    def _lut(lut):
        if lut.tables.dtype != np.float32 or not lut.tables.flags.c_contiguous:
            raise ValueError("RNN tables must be C-contiguous float32")
        return (
            np.ascontiguousarray(lut.a, np.int32),
            np.ascontiguousarray(lut.b, np.int32),
            lut.tables,
        )

    def train(self, data: np.ndarray, starts: np.ndarray, lrs: np.ndarray) -> float:
        """One SGD step per window start; returns the summed mean-per-window training loss."""
        self._gen = None
        return float(
            _rnn_train_steps(
                _as_u8(data),
                np.asarray(starts, np.int64),
                np.asarray(lrs, np.float32),
                self._emb,
                *self._cell,
                *self._unemb,
                self._work,
            )
        )

    def validate(self, data: np.ndarray, starts: np.ndarray) -> float:
        """Mean -ln p of the byte after each window (float32 accumulation)."""
        starts = np.asarray(starts, np.int64)
        total = _rnn_validate(
            _as_u8(data), starts, self._emb, *self._cell, *self._unemb, self._work
        )
        return float(np.float32(total) / np.float32(len(starts)))

    def logits(
        self, tokens: np.ndarray, h0: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logits (T, V) and hidden states (T, D) for ``tokens`` from state ``h0`` (zeros)."""
        tokens = _as_u8(tokens)
        T = len(tokens)
        D, V = self.model.dim, self.model.vocab
        NT_c, NT_u = self.model.cell.n_tables, self.model.unembedder.n_tables
        h = np.zeros((T, D), np.float32)
        out = np.zeros((T, V), np.float32)
        start = np.zeros(D, np.float32) if h0 is None else np.asarray(h0, np.float32)
        c = [np.zeros((T, NT_c), t) for t in (np.int32, np.int32, np.float32)]
        u = [np.zeros((T, NT_u), t) for t in (np.int32, np.int32, np.float32)]
        _rnn_forward(tokens, self._emb, *self._cell, *self._unemb, h, *c, *u, out, start)
        return out, h

    def next_logits(self, history: np.ndarray) -> np.ndarray:
        """Logits for the byte after ``history``, run from h = 0 (an empty one reads a space).

        When ``history`` extends the previous call's by bytes, only the new bytes are run.
        """
        hist = np.asarray(history, np.uint8)
        if len(hist) == 0:
            hist = np.array([ord(" ")], np.uint8)
        prev = self._gen
        if (
            prev is not None
            and len(prev[0]) < len(hist)
            and np.array_equal(hist[: len(prev[0])], prev[0])
        ):
            out, h = self.logits(hist[len(prev[0]) :], prev[1])
        else:
            out, h = self.logits(hist)
        self._gen = (hist.copy(), h[-1].copy())
        return out[-1]


def _workers(workers: int | None) -> int:
    """The fast mode's worker count: ``workers``, or numba's thread count."""
    n = numba.get_num_threads() if workers is None else int(workers)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"workers must be 1..{numba.config.NUMBA_NUM_THREADS} (the threads numba may use), "
            f"not {workers!r}"
        )
    return n


def _as_u8(data: np.ndarray) -> np.ndarray:
    """``data`` as a writable C-contiguous uint8 array (one compiled signature for all)."""
    data = np.ascontiguousarray(data, np.uint8)
    return data if data.flags.writeable else data.copy()


def make_engine(model, *, fast: bool = False):
    """The engine for a sequence model (:class:`TransformerEngine` or :class:`RNNEngine`)."""
    if isinstance(model, TransformerLM):
        return TransformerEngine(model, fast=fast)
    if isinstance(model, SpikingRNN):
        return RNNEngine(model, fast=fast)
    raise TypeError(f"not a sequence model: {type(model).__name__}")
