"""The float engine against hand-computed cases and a per-sample reference loop."""

import numpy as np
import pytest

from spikelut.compiler.ir import golden
from spikelut.compiler.ir.lut import LUTLayer, comparisons, indices_from_u
from spikelut.compiler.train.engine import least_certain, lut_backward, lut_forward, surrogate_grad


def _layer(a, b, tables, in_dim, residual=False):
    return LUTLayer(
        a=np.array(a),
        b=np.array(b),
        tables=np.array(tables, np.float64),
        in_dim=in_dim,
        residual=residual,
    )


def _hand_layer():
    # one table, N_C = 2: pair 0 compares x0 with x1, pair 1 compares x1 with x2; Y = 2
    return _layer([[0, 1]], [[1, 2]], [[[0, 0], [1, 2], [5, 5], [4, -1]]], in_dim=3)


def test_surrogate_sign_of_zero_is_minus():
    got = surrogate_grad(np.array([0.0, 1.0, -1.0, 3.0]))
    np.testing.assert_allclose(got, [0.5, -0.125, 0.125, -0.5 / 16])


def test_tie_gives_bit_zero_and_least_certain_pair():
    layer = _hand_layer()
    x = np.array([[3.0, 1.0, 1.0]])  # u = [2, 0]: pair 1 ties
    u = comparisons(layer, x)
    np.testing.assert_array_equal(u, [[[2.0, 0.0]]])
    assert indices_from_u(u).tolist() == [[1]]
    r_star, u_star = least_certain(u)
    assert r_star.tolist() == [[1]] and u_star.tolist() == [[0.0]]


def test_ties_in_abs_u_pick_the_first_pair():
    u = np.array([[[-2.0, 2.0, -2.0, 5.0]], [[3.0, 1.0, -1.0, 1.0]]])
    r_star, u_star = least_certain(u)
    assert r_star.tolist() == [[0], [1]]
    assert u_star.tolist() == [[-2.0], [1.0]]
    assert indices_from_u(u).tolist() == [[0b1010], [0b1011]]


def test_hand_computed_forward_backward():
    layer = _hand_layer()
    x = np.array([[3.0, 1.0, 1.0]])
    y, cache = lut_forward(layer, x)
    np.testing.assert_array_equal(y, [[1.0, 2.0]])  # row j = 0b01
    dy = np.array([[1.0, -1.0]])
    dx = lut_backward(layer, cache, dy, lr=0.5)
    # r* = 1 (|u| = 0), jbar = 0b11; g = <dy, S[3] - S[1]> = <(1,-1), (3,-3)> = 6;
    # U'(0) = +0.5 (sign(0) = -1) -> v = 3; dx[a=1] += 3, dx[b=2] -= 3.
    # Had the row moved first (S[1] = (0.5, 2.5)), g would be 7 and v 3.5.
    np.testing.assert_allclose(dx, [[0.0, 3.0, -3.0]])
    np.testing.assert_allclose(layer.tables[0, 1], [0.5, 2.5])
    np.testing.assert_allclose(layer.tables[0, [0, 2, 3]], [[0, 0], [5, 5], [4, -1]])


def test_hand_computed_negative_u_and_first_tie():
    layer = _hand_layer()
    x = np.array([[0.0, 2.0, 4.0]])  # u = [-2, -2]: j = 0, r* = 0 (first), jbar = 1
    y, cache = lut_forward(layer, x)
    np.testing.assert_array_equal(y, [[0.0, 0.0]])
    dx = lut_backward(layer, cache, np.array([[2.0, 1.0]]), lr=0.0)
    # g = <(2,1), S[1] - S[0]> = 4; U'(-2) = 0.5 / 9 -> v = 2/9 on pair 0 (x0 vs x1)
    np.testing.assert_allclose(dx, [[2 / 9, -2 / 9, 0.0]])
    np.testing.assert_array_equal(layer.tables[0, 0], [0.0, 0.0])  # lr 0: no update


def test_residual_passes_gradient_through():
    tables = np.zeros((1, 2, 2))
    tables[0, 1] = [1.0, -1.0]
    layer = _layer([[0]], [[1]], tables, in_dim=2, residual=True)
    x = np.array([[0.5, 0.0]])  # u = 0.5 > 0: row 1
    y, cache = lut_forward(layer, x)
    np.testing.assert_allclose(y, [[1.5, -1.0]])
    dy = np.array([[1.0, 2.0]])
    dx = lut_backward(layer, cache, dy, lr=0.0)
    # g = <dy, S[0] - S[1]> = -1 + 2 = 1; U'(0.5) = -0.5 / 2.25
    v = 1.0 * (-0.5 / 2.25)
    np.testing.assert_allclose(dx, [[1.0 + v, 2.0 - v]])


def test_batch_reads_old_tables_and_sums_row_updates():
    layer = _hand_layer()
    x = np.array([[3.0, 1.0, 1.0], [3.0, 1.0, 1.5]])  # both select row 1
    _, cache = lut_forward(layer, x)
    assert cache.j.tolist() == [[1], [1]]
    dy = np.array([[1.0, -1.0], [1.0, -1.0]])
    dx = lut_backward(layer, cache, dy, lr=0.5)
    # sample 0 as in the hand case; sample 1: u = [2, -0.5], r* = 1, g = 6 from the old
    # tables (not 7), U'(-0.5) = 0.5 / 2.25
    np.testing.assert_allclose(dx[0], [0.0, 3.0, -3.0])
    v1 = 6 * (0.5 / 2.25)
    np.testing.assert_allclose(dx[1], [0.0, v1, -v1])
    np.testing.assert_allclose(layer.tables[0, 1], [1 - 2 * 0.5, 2 + 2 * 0.5])


def _reference_backward(layer, x, dy, lr):
    """A per-sample, per-table loop transcribing the rule of spikelut.compiler.train.engine's docstring; returns dx, new tables."""
    old = layer.tables.copy()
    new = old.copy()
    dx = np.zeros_like(x)
    for s in range(x.shape[0]):
        for i in range(layer.n_tables):
            j, best, r_star = 0, np.inf, 0
            for r in range(layer.n_c):
                u = x[s, layer.a[i, r]] - x[s, layer.b[i, r]]
                if u > 0:
                    j |= 1 << r
                if abs(u) < best:
                    best, r_star, u_star = abs(u), r, u
            jbar = j ^ (1 << r_star)
            g = float(np.dot(dy[s], old[i, jbar] - old[i, j]))
            sign = 1.0 if u_star > 0 else -1.0
            v = g * (-0.5 * sign / (1 + abs(u_star)) ** 2)
            dx[s, layer.a[i, r_star]] += v
            dx[s, layer.b[i, r_star]] -= v
            new[i, j] -= lr * dy[s]
    if layer.residual:
        dx += dy
    return dx, new


@pytest.mark.parametrize("residual", [False, True])
def test_vectorised_matches_reference_loop(residual):
    rng = np.random.default_rng(3)
    d = 6
    layer = LUTLayer.random(
        in_dim=d, out_dim=d if residual else 4, n_tables=5, n_c=3, rng=rng, residual=residual
    )
    layer = layer.with_tables(rng.normal(size=layer.tables.shape))
    # integer-valued inputs make ties (and |u| ties) frequent
    x = rng.integers(0, 3, size=(16, d)).astype(np.float64)
    dy = rng.normal(size=(16, layer.out_dim))
    want_dx, want_tables = _reference_backward(layer, x, dy, lr=0.1)
    y, cache = lut_forward(layer, x)
    np.testing.assert_allclose(y, layer.forward(x))
    dx = lut_backward(layer, cache, dy, lr=0.1)
    np.testing.assert_allclose(dx, want_dx, atol=1e-12)
    np.testing.assert_allclose(layer.tables, want_tables, atol=1e-12)


def test_forward_matches_golden_on_integers():
    rng = np.random.default_rng(4)
    layer = LUTLayer.random(in_dim=8, out_dim=3, n_tables=6, n_c=4, rng=rng)
    int_layer = layer.with_tables(rng.integers(-8, 8, size=layer.tables.shape))
    float_layer = int_layer.with_tables(int_layer.tables.astype(np.float64))
    x = rng.integers(-3, 4, size=(20, 8))
    np.testing.assert_array_equal(float_layer.forward(x), golden.lut_layer(int_layer, x))


def test_bad_shapes_are_rejected():
    layer = _hand_layer()
    with pytest.raises(ValueError, match="shape"):
        lut_forward(layer, np.zeros((2, 4)))
    _, cache = lut_forward(layer, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dL/dy"):
        lut_backward(layer, cache, np.zeros((2, 3)), lr=0.1)
