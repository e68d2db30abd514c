"""The LUT synapse bank: exact row sums for every storage kind, throughput, table reload."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_sim import idle_latencies, ints, recv, run, send

from spikelut.hdl.bank import LUTBank
from spikelut.hdl.layer_params import LayerParams, bank_geometry
from spikelut.hdl.params import signed_width, sum_range
from spikelut.hdl.storage import Storage, bank_image


def random_tables(rng, n_t, n_c, y, tw):
    return rng.integers(-(1 << (tw - 1)), 1 << (tw - 1), (n_t, 1 << n_c, y))


def acc_width_of(tables):
    lo, hi = sum_range(tables)
    return signed_width(int(lo.min()), int(hi.max()))


def bank_params(tables, *, table_width, out_width, **kw):
    """A layer of ``tables`` (on a 2-value input: the bank never sees the anchors)."""
    tables = np.asarray(tables)
    n_t, n_c = tables.shape[0], max(1, tables.shape[1].bit_length() - 1)
    return LayerParams(
        anchors_a=np.zeros((n_t, n_c), np.int64),
        anchors_b=np.ones((n_t, n_c), np.int64),
        tables=tables,
        in_dim=2,
        in_width=2,
        table_width=table_width,
        out_width=out_width,
        **kw,
    )


def image_writes(tables, params):
    img = bank_image(tables, tables_per_cycle=params.tables_per_cycle, lanes=params.lanes)
    return [
        {"lane": p, "addr": a, "data": img[p, a].tolist()}
        for p in range(img.shape[0])
        for a in range(img.shape[1])
    ]


def simulate(bank, indices, rng, gap_p=0.3, ready_p=0.5, load=None):
    """Outputs (and transfer cycles) for ``indices``; ``load``: tables written first."""
    got = []

    async def tb_in(ctx):
        if load is not None:
            await send(ctx, bank.w_stream, image_writes(load, bank.params), rng, gap_p)
        await send(ctx, bank.i_stream, [j.tolist() for j in indices], rng, gap_p)

    async def tb_out(ctx):
        got.extend(await recv(ctx, bank.o_stream, len(indices), rng, ready_p))

    run(bank, tb_in, tb_out)
    return np.array([ints(p) for _, p in got]), [c for c, _ in got]


def row_sums(tables, indices):
    return tables[np.arange(tables.shape[0]), indices].sum(axis=1)


CASES = [
    (Storage.LOGIC, None, None),
    (Storage.LUTRAM, 1, 7),
    (Storage.LUTRAM, 3, 2),
    (Storage.BRAM, 1, 1),
    (Storage.BRAM, 2, 3),
    (Storage.BRAM, 5, 7),
    (Storage.SPRAM, 2, 4),
]


@pytest.mark.parametrize(("storage", "p", "lanes"), CASES)
def test_bank_sums_selected_rows(storage, p, lanes):
    rng = np.random.default_rng(hash((storage.value, p, lanes)) % 2**32)
    n_t, n_c, y, tw = 5, 3, 7, 5
    tables = random_tables(rng, n_t, n_c, y, tw)
    bank = LUTBank(
        bank_params(
            tables,
            table_width=tw,
            out_width=acc_width_of(tables),
            storage=storage,
            tables_per_cycle=p,
            lanes=lanes,
        )
    )
    indices = rng.integers(0, 1 << n_c, (25, n_t))
    indices[0] = 0
    indices[1] = (1 << n_c) - 1
    load = tables if storage == Storage.SPRAM else None
    got, _ = simulate(bank, indices, rng, load=load)
    np.testing.assert_array_equal(got, row_sums(tables, indices))


@pytest.mark.parametrize(("storage", "p", "lanes"), CASES)
def test_bank_runs_at_its_cycles_per_inference(storage, p, lanes):
    rng = np.random.default_rng(1)
    n_t, n_c, y, tw = 5, 3, 7, 5
    tables = random_tables(rng, n_t, n_c, y, tw)
    params = bank_params(
        tables, table_width=tw, out_width=8, storage=storage, tables_per_cycle=p, lanes=lanes
    )
    g, b, _ = bank_geometry(n_t, n_c, y, params.tables_per_cycle, params.lanes)
    assert params.bank_cycles == (1 if storage == Storage.LOGIC else g * b)
    assert params.cycles_per_inference == params.bank_cycles  # the parallel indexer keeps up
    bank = LUTBank(params)
    indices = rng.integers(0, 1 << n_c, (12, n_t))
    load = tables if storage == Storage.SPRAM else None
    got, cycles = simulate(bank, indices, rng, gap_p=0.0, ready_p=1.0, load=load)
    np.testing.assert_array_equal(got, row_sums(tables, indices))
    assert set(np.diff(cycles)) == {params.bank_cycles}


@pytest.mark.parametrize(("storage", "p", "lanes"), [c for c in CASES if c[0] != Storage.LOGIC])
def test_an_idle_bank_reads_in_the_cycle_it_takes_the_indices(storage, p, lanes):
    """Latency on the critical loop of a language model: an idle bank issues its first read
    in the cycle it takes the indices, so the sums leave ``bank_cycles + 1`` cycles later
    (the last read's data, then the accumulator's register)."""
    rng = np.random.default_rng(4)
    n_t, n_c, y, tw = 5, 3, 7, 5
    tables = random_tables(rng, n_t, n_c, y, tw)
    params = bank_params(
        tables, table_width=tw, out_width=8, storage=storage, tables_per_cycle=p, lanes=lanes
    )
    bank = LUTBank(params)
    indices = rng.integers(0, 1 << n_c, (3, n_t))
    writes = image_writes(tables, params) if storage == Storage.SPRAM else []
    got = idle_latencies(bank, [j.tolist() for j in indices], writes=writes)
    np.testing.assert_array_equal([ints(v) for _, v in got], row_sums(tables, indices))
    assert [cycles for cycles, _ in got] == [params.bank_cycles + 1] * 3


@pytest.mark.parametrize("storage", [Storage.LUTRAM, Storage.BRAM, Storage.SPRAM])
def test_bank_reload_gives_new_tables(storage):
    rng = np.random.default_rng(7)
    n_t, n_c, y, tw = 4, 4, 3, 6
    old = random_tables(rng, n_t, n_c, y, tw)
    new = random_tables(rng, n_t, n_c, y, tw)
    params = bank_params(
        old, table_width=tw, out_width=9, storage=storage, tables_per_cycle=2, lanes=2
    )
    bank = LUTBank(params)
    indices = rng.integers(0, 1 << n_c, (10, n_t))
    got_old, _ = simulate(bank, indices, rng, load=old if storage == Storage.SPRAM else None)
    np.testing.assert_array_equal(got_old, row_sums(old, indices))
    bank2 = LUTBank(params)
    got_new, _ = simulate(bank2, indices, rng, load=new)
    np.testing.assert_array_equal(got_new, row_sums(new, indices))


def test_bank_reload_between_inferences():
    """Writes wait while inferences are in flight; later inferences see the new tables."""
    rng = np.random.default_rng(3)
    n_t, n_c, y, tw = 3, 2, 4, 4
    old = random_tables(rng, n_t, n_c, y, tw)
    new = random_tables(rng, n_t, n_c, y, tw)
    bank = LUTBank(bank_params(old, table_width=tw, out_width=7, tables_per_cycle=1, lanes=2))
    first = rng.integers(0, 1 << n_c, (5, n_t))
    second = rng.integers(0, 1 << n_c, (5, n_t))
    got = []

    async def tb_in(ctx):
        await send(ctx, bank.i_stream, [j.tolist() for j in first])
        await send(ctx, bank.w_stream, image_writes(new, bank.params), rng, 0.2)
        await send(ctx, bank.i_stream, [j.tolist() for j in second], rng, 0.2)

    async def tb_out(ctx):
        got.extend(await recv(ctx, bank.o_stream, 10, rng, 0.3))

    run(bank, tb_in, tb_out)
    got = np.array([ints(p) for _, p in got])
    np.testing.assert_array_equal(got[:5], row_sums(old, first))
    np.testing.assert_array_equal(got[5:], row_sums(new, second))


def test_spram_starts_empty():
    rng = np.random.default_rng(4)
    tables = random_tables(rng, 2, 2, 3, 4)
    bank = LUTBank(bank_params(tables, table_width=4, out_width=6, storage=Storage.SPRAM))
    got, _ = simulate(bank, rng.integers(0, 4, (3, 2)), rng)
    assert not got.any()


def test_bank_image_layout():
    rng = np.random.default_rng(5)
    tables = random_tables(rng, 5, 2, 7, 6)
    img = bank_image(tables, tables_per_cycle=2, lanes=3)
    g, b, depth = bank_geometry(5, 2, 7, 2, 3)
    assert img.shape == (2, depth, 3) and (g, b) == (3, 3)
    for i in range(5):
        for j in range(4):
            for c in range(7):
                p, gi, bi, lane = i % 2, i // 2, c // 3, c % 3
                assert img[p, (gi * b + bi) * 4 + j, lane] == tables[i, j, c]
    assert not img[1, 2 * b * 4 :].any()  # table 5 does not exist
    assert not img[:, :, 1:][:, 2 * 4 : 3 * 4].any()  # columns 7, 8 do not exist


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"out_width": 4}, "out_width=4 cannot hold the table sums"),
        ({"table_width": 3}, "do not fit table_width=3"),
        ({"tables_per_cycle": 4}, r"tables_per_cycle must be 1\.\.3, not 4"),
        ({"lanes": 0}, r"lanes must be 1\.\.2, not 0"),
        ({"storage": Storage.LOGIC, "lanes": 1}, "LOGIC storage reads every table at once"),
        ({"storage": "bram"}, "storage must be a Storage, not 'bram'"),
        ({"tables": np.zeros((3, 3, 2), int)}, "2\\*\\*N_C rows"),
        ({"tables": np.zeros((3, 4, 2))}, "must be integers"),
    ],
)
def test_bank_parameters_reject_bad_values(kwargs, message):
    """A bank is built from checked parameters: :class:`LayerParams` refuses bad ones."""
    params = dict(tables=np.full((3, 4, 2), 7), table_width=4, out_width=6)
    params.update(kwargs)
    with pytest.raises(ValueError, match=message):
        bank_params(**params)


def test_spram_depth_limit():
    tables = np.zeros((8, 1 << 12, 10), int)
    with pytest.raises(ValueError, match="SPRAM lanes hold 16384 words, this bank needs 65536"):
        bank_params(tables, table_width=4, out_width=4, storage=Storage.SPRAM, lanes=5)
