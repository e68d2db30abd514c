"""A language model on a board: the GENERATE and SET_SAMPLER requests, the tables' contract
for its three memories, and the host runtime, against the golden model.

The fast tests run the complete board core (:class:`~spikelut.boards.top.BoardCore` with an
:class:`~spikelut.hdl.recurrent.RNNCore`) in Amaranth's simulator, its UART pins bridged to
the real host client (:class:`~spikelut.boards.host.BoardClient`) in a thread; every answer
is checked against :class:`Oracle`, the protocol's semantics written with the golden model's
primitives. The slow ones run it in Verilator over the simulated UART
(:func:`~spikelut.sim.board_sim.run_lm_board_sim`), booting from the SPI-flash model or
loading the tables over the link.
"""

from __future__ import annotations

import queue
import threading

import numpy as np
import pytest
from amaranth.sim import Simulator
from helpers_models import tiny_model

from spikelut.boards import protocol as p
from spikelut.boards.design import model_hash
from spikelut.boards.host import BoardClient, QueueTransport
from spikelut.boards.lm_design import (
    lm_build_tables,
    lm_core_tables,
    lm_selection,
    lm_shape_hash,
    lm_tables,
    make_lm_core,
)
from spikelut.boards.lm_runtime import generate_on_board
from spikelut.boards.platforms import board
from spikelut.boards.runtime import BoardMismatch, run_on_board, upload_tables
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.backend.sequence import RNNPlan
from spikelut.compiler.ir.classifier import LayerQuant
from spikelut.compiler.ir.golden import generate_rnn, run_rnn
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.selection import Selection, Xorshift32, exp_table, select_byte
from spikelut.hdl.hostlink.wire import ErrorCode, FrameType, ModelKind, ProtocolError
from spikelut.hdl.storage import Storage

DIVISOR = 4
CLOCK_HZ = 10_000_000


def tiny_rnn(seed: int = 3, *, vocab: int = 11, dim: int = 6) -> IntegerRNN:
    """A random integer RNN small enough for Amaranth's simulator."""
    rng = np.random.default_rng(seed)
    cell = LUTLayer.random(in_dim=dim, out_dim=dim, n_tables=4, n_c=3, rng=rng)
    cell = cell.with_tables(rng.integers(-6, 6, cell.tables.shape))
    unemb = LUTLayer.random(in_dim=dim, out_dim=vocab, n_tables=4, n_c=3, rng=rng)
    unemb = unemb.with_tables(rng.integers(-12, 12, unemb.tables.shape))
    return IntegerRNN(
        embedding=rng.integers(-6, 6, (vocab, dim)),
        cell=cell,
        unembedder=unemb,
        cell_quant=LayerQuant(table_bits=4, in_shift=1),
        unembedder_quant=LayerQuant(table_bits=5, in_shift=0, out_scale_log2=2),
        embedding_bits=4,
        context=8,
    )


def retrained(model: IntegerRNN, seed: int = 9) -> IntegerRNN:
    """The same shape (anchors, widths) with other tables: the embedding rows permuted, the
    LUT tables' rows reversed."""
    rng = np.random.default_rng(seed)
    return IntegerRNN(
        embedding=model.embedding[rng.permutation(model.vocab)],
        cell=model.cell.with_tables(model.cell.tables[:, ::-1]),
        unembedder=model.unembedder.with_tables(model.unembedder.tables[:, ::-1]),
        cell_quant=model.cell_quant,
        unembedder_quant=model.unembedder_quant,
        embedding_bits=model.embedding_bits,
        context=model.context,
    )


BRAM_PLAN = RNNPlan(
    kind="parallel",
    embedding=LayerPlan(Storage.BRAM, 1, 2),
    cell=LayerPlan(Storage.BRAM, 2, 3),
    unembedder=LayerPlan(Storage.BRAM, 2, 4),
)

INFO = {"board": "icebreaker", "rnn_plan": BRAM_PLAN.to_json()}  # a build's board.json


class Oracle:
    """What a language-model board answers (:mod:`spikelut.hdl.hostlink.wire`, "Language
    models"), from the golden model's steps: the state, the random source and the last
    generated token carried from request to request."""

    def __init__(self, model: IntegerRNN, exp):
        self.model, self.exp = model, tuple(int(v) for v in exp)
        self.h = self.rng = self.last = None

    def generate(self, prompt: bytes, count: int, *, start: bool, sample: bool, seed: int):
        if start:
            self.h, self.rng = np.zeros((1, self.model.dim), np.int64), Xorshift32(seed)
        rule = Selection(self.exp if sample else None, 1)
        tokens = list(prompt) if prompt else [self.last]
        out = []
        while len(out) < count:
            trace = run_rnn(self.model, np.array([[tokens.pop(0)]]), h0=self.h)
            self.h = trace.states[:, -1]
            choice = select_byte(trace.logits[0, -1], rule, self.rng)
            if not tokens:
                out.append(choice)
                tokens.append(choice)
        self.last = out[-1]
        return bytes(out)


def pysim_board(core, body):
    """Run the board core ``core`` in Amaranth's simulator with ``body(client)`` driving it
    from a thread through a :class:`BoardClient` whose bytes go over the UART pins; returns
    what ``body`` returns (or raises what it raised)."""
    transport = QueueTransport()
    client = BoardClient(transport, timeout=300.0, retries=0)
    done, out = threading.Event(), {}

    def host():
        try:
            out["value"] = body(client)
        except BaseException as e:  # re-raised in the test's thread
            out["error"] = e
        finally:
            done.set()

    async def rx_line(ctx):
        threading.Thread(target=host, daemon=True).start()
        while not done.is_set():
            try:
                chunk = transport.to_board.get_nowait()
            except queue.Empty:
                await ctx.tick().repeat(50)
                continue
            for byte in chunk:
                for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                    ctx.set(core.rx, bit)
                    await ctx.tick().repeat(DIVISOR)

    async def tx_line(ctx):
        while True:
            await ctx.negedge(core.tx)
            await ctx.tick().repeat(DIVISOR // 2)
            byte = 0
            for i in range(8):
                await ctx.tick().repeat(DIVISOR)
                byte |= ctx.get(core.tx) << i
            await ctx.tick().repeat(DIVISOR)
            assert ctx.get(core.tx) == 1, "framing error"
            transport.from_board.put(bytes([byte]))

    sim = Simulator(core)
    sim.add_clock(1 / CLOCK_HZ)
    sim.add_testbench(rx_line)
    sim.add_testbench(tx_line, background=True)
    sim.run()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _core(model, plan=BRAM_PLAN, selection=None, **options):
    selection = selection or lm_selection(model, 0.5, 1)
    return make_lm_core(model, plan, selection, clock_hz=CLOCK_HZ, divisor=DIVISOR, **options)


def _code(call) -> int:
    with pytest.raises(ProtocolError) as refused:
        call()
    return refused.value.code


def test_generate_continues_sequences_and_switches_rules_as_the_oracle():
    """START and continuation requests, greedy and sampled, a rule changed mid-sequence
    (the random state carries on), a prompt continuing a sequence, a new sampler table: each
    reply byte for byte the oracle's; the counters count every token fed."""
    model = tiny_rnn()
    exp = exp_table(0.5, -model.unembedder_quant.out_scale_log2)
    hot = exp_table(2.0, -model.unembedder_quant.out_scale_log2)
    oracle = Oracle(model, exp)
    requests = [
        (bytes([1, 2, 3, 4]), 6, True, False, 7),
        (b"", 5, False, False, 7),
        (bytes([5, 0]), 7, True, True, 99),
        (b"", 6, False, True, 3),  # the seed is ignored without START
        (b"", 4, False, False, 3),  # greedy now; the state carries on
        (b"", 6, False, True, 3),  # sampling again: the random state kept
        (bytes([9, 9, 10]), 5, False, True, 3),  # a prompt continues the sequence
    ]

    def body(link):
        ident = link.identify()
        got = [link.generate(*r[:2], start=r[2], sample=r[3], seed=r[4]) for r in requests]
        before = link.read_counters()
        link.set_sampler(hot.tolist())
        got.append(link.generate(bytes([3]), 20, start=True, sample=True, seed=5))
        return ident, got, before

    ident, got, counters = pysim_board(_core(model), body)
    assert ident.kind == ModelKind.LANGUAGE_MODEL and ident.is_language_model
    assert (ident.vocab, ident.exp_entries, ident.n_layers) == (model.vocab, 256, 3)
    assert ident.holds(model_hash(model))
    assert ident.shape_hash == lm_build_tables(model, INFO).shape_hash
    want = [oracle.generate(*r[:2], start=r[2], sample=r[3], seed=r[4]) for r in requests]
    oracle.exp = tuple(int(v) for v in hot)
    want.append(oracle.generate(bytes([3]), 20, start=True, sample=True, seed=5))
    assert got == want
    # the oracle agrees with generate_rnn on a START + continuation
    sampled = Selection(tuple(int(v) for v in exp), 99)
    assert want[2] + want[3] == generate_rnn(model, bytes([5, 0]), 13, sampled)
    assert len(set(want[-1])) > 3  # the hot table spreads the choices
    fed = sum(max(len(r[0]), 1) + r[1] - 1 for r in requests)
    assert counters.inferences == fed and counters.errors == 0 and counters.cycles > 0


def test_bad_requests_are_refused_and_change_nothing():
    """Each bad GENERATE or SET_SAMPLER gets its ERROR and leaves the sequence as it was; a
    classifier's request is an unknown type; the tables' changes end the sequence."""
    model = tiny_rnn()
    oracle = Oracle(model, exp_table(0.5, -2))

    def body(link):
        codes = {}
        codes["no sequence"] = _code(lambda: link.generate(b"", 3, start=False))
        first = link.generate(bytes([1, 2]), 3, start=True, sample=True, seed=11)

        def raw(ftype, payload):
            return lambda: link.request(ftype, payload, reply_bytes=8)

        gen = p.generate_payload
        codes["count 0"] = _code(
            raw(FrameType.GENERATE, gen(b"\x01", 0, start=True, sample=False, seed=1))
        )
        codes["count > max"] = _code(
            raw(FrameType.GENERATE, gen(b"\x01", 1017, start=True, sample=False, seed=1))
        )
        codes["start, no prompt"] = _code(
            raw(FrameType.GENERATE, gen(b"", 2, start=True, sample=False, seed=1))
        )
        codes["zero seed"] = _code(
            raw(FrameType.GENERATE, gen(b"\x01", 2, start=True, sample=False, seed=0))
        )
        codes["token >= vocab"] = _code(
            raw(
                FrameType.GENERATE,
                gen(bytes([1, model.vocab]), 2, start=True, sample=False, seed=1),
            )
        )
        flags = bytearray(gen(b"\x01", 2, start=True, sample=False, seed=1))
        flags[0] |= 4
        codes["unknown flag"] = _code(raw(FrameType.GENERATE, bytes(flags)))
        codes["short head"] = _code(raw(FrameType.GENERATE, b"\x01\x01\x00"))
        codes["sampler length"] = _code(raw(FrameType.SET_SAMPLER, bytes(510)))
        codes["sampler zero"] = _code(raw(FrameType.SET_SAMPLER, bytes(512)))
        codes["infer"] = _code(raw(FrameType.INFER, b"\x01"))
        codes["infer batch"] = _code(raw(FrameType.INFER_BATCH, b"\x01\x00\x01"))
        with pytest.raises(BoardMismatch, match="runs a language model"):
            run_on_board(link, tiny_model(), np.zeros((1, 8), np.int64))
        after = link.generate(b"", 4, start=False, sample=True, seed=1)  # nothing changed
        link.begin_tables()  # a table change: no valid tables, the sequence is gone
        codes["no tables"] = _code(lambda: link.generate(b"\x01", 2, start=True))
        upload_tables(
            link, lm_core_tables(_core(model).net).space, lm_tables(model), model_hash(model)
        )
        codes["sequence ended"] = _code(lambda: link.generate(b"", 2, start=False))
        again = link.generate(bytes([4]), 5, start=True)
        return codes, first, after, again, link.read_counters()

    codes, first, after, again, counters = pysim_board(_core(model), body)
    assert codes.pop("no tables") == ErrorCode.NO_TABLES
    assert codes.pop("short head") == ErrorCode.BAD_LENGTH
    assert codes.pop("infer") == codes.pop("infer batch") == ErrorCode.UNKNOWN_TYPE
    assert codes == dict.fromkeys(codes, ErrorCode.BAD_ARGUMENT), codes
    assert first == oracle.generate(bytes([1, 2]), 3, start=True, sample=True, seed=11)
    assert after == oracle.generate(b"", 4, start=False, sample=True, seed=1)
    assert again == oracle.generate(bytes([4]), 5, start=True, sample=False, seed=1)
    assert counters.errors == 14


def test_tables_load_over_the_link_for_the_three_memories():
    """The board boots with its bitstream's model; the tables of another model of the same
    shape (every memory different) load over the link into layers 0, 1 and 2 and it then
    generates as that model through the host runtime, a prompt longer than a request holds
    in pieces."""
    model, other = tiny_rnn(), retrained(tiny_rnn())
    core = _core(model, max_payload=520)
    build = lm_build_tables(other, INFO)
    assert build.shape_hash == core.shape_hash and model_hash(other) != model_hash(model)
    prompt = bytes(np.random.default_rng(1).integers(0, model.vocab, 600).tolist())
    greedy = lm_selection(other, 0, 1)
    sampled = lm_selection(other, 0.7, 1234)

    def body(link):
        with pytest.raises(BoardMismatch, match="give the build folder"):
            generate_on_board(link, other, prompt, 5, greedy)
        a = generate_on_board(link, other, prompt, 30, greedy, chunk=8, build=build)
        b = generate_on_board(link, other, prompt[:3], 25, sampled, chunk=16, build=build)
        return a, b

    a, b = pysim_board(core, body)
    assert a["table_frames"] >= 2 and b["table_frames"] == 0
    for r, sel, pr in ((a, greedy, prompt), (b, sampled, prompt[:3])):
        assert r["agree"] == r["n"] and not r["mismatches"]
        assert r["generated"].encode("latin-1") == generate_rnn(other, pr, r["n"], sel)
        assert r["identity"]["tables_hash"] == model_hash(other).hex()
        assert r["core_cycles_per_token"] > 0
    assert a["generated"] != generate_rnn(model, prompt, 30, greedy).decode("latin-1")
    # the prompt in two pieces, then 30 in eights; 25 in sixteens
    assert a["requests"] == 2 + 3 and b["requests"] == 2


def test_an_lm_design_refuses_what_it_cannot_run():
    """The runtime refuses a classifier's board, another vocabulary, a prompt outside it; a
    build of another shape has another fingerprint."""
    model = tiny_rnn()

    class Stub:  # a board that only identifies itself
        def __init__(self, ident):
            self.ident = ident

        def identify(self):
            return self.ident

    from spikelut.hdl.hostlink.wire import Identity

    classifier = Identity(8, 2, 8, 8, 4, 1, 1000, 64, b"h")
    with pytest.raises(BoardMismatch, match="runs a classifier"):
        generate_on_board(Stub(classifier), model, b"\x01", 3, lm_selection(model, 0, 1))
    other = Identity(8, 1, 8, 8, 4, 3, 1000, 1016, b"h", kind=1, vocab=12, exp_entries=256)
    with pytest.raises(BoardMismatch, match="has 12 tokens"):
        generate_on_board(Stub(other), model, b"\x01", 3, lm_selection(model, 0, 1))
    with pytest.raises(ValueError, match="prompt holds byte"):
        generate_on_board(None, model, bytes([model.vocab]), 3, lm_selection(model, 0, 1))
    assert lm_build_tables(tiny_rnn(vocab=12), INFO).shape_hash != _core(model).shape_hash
    with pytest.raises(ValueError, match="no language-model plan"):
        lm_build_tables(model, {"board": "icebreaker", "plans": []})
    assert lm_shape_hash(_core(retrained(model)).net) == _core(model).shape_hash
    other_kind = RNNPlan(**{**BRAM_PLAN.__dict__, "kind": "serial"})
    assert lm_build_tables(model, {**INFO, "rnn_plan": other_kind.to_json()}).shape_hash != (
        _core(model).shape_hash
    )


# -- the complete board in Verilator over the simulated UART --------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tables", "temperature"), [("flash", 0.0), ("link", 0.6)], ids=["flash-greedy", "link-sampled"]
)
def test_the_simulated_board_generates_as_the_golden_model(tables, temperature):
    """The icebreaker design (tables in SPRAM: booted from the flash model, or loaded over
    the link after a blank flash) generates 300 tokens over the simulated UART in requests
    of 64, every byte the golden model's."""
    from spikelut.sim.board_sim import run_lm_board_sim

    model = tiny_rnn(vocab=24, dim=8)
    plan = RNNPlan(
        kind="serial",
        embedding=LayerPlan(Storage.SPRAM, 1, 4),
        cell=LayerPlan(Storage.BRAM, 2, 4),
        unembedder=LayerPlan(Storage.SPRAM, 1, 4),
    )
    selection = lm_selection(model, temperature, 77)
    prompt = bytes(np.random.default_rng(2).integers(0, model.vocab, 20).tolist())
    r = run_lm_board_sim(
        model, prompt, 300, selection, spec=board("icebreaker"), tables=tables, plan=plan,
        progress=lambda msg: None,
    )  # fmt: skip
    assert r["boot"] == ("ok" if tables == "flash" else "rejected")
    assert r["agree"] == r["n"] == 300 and not r["mismatches"]
    assert r["generated"].encode("latin-1") == generate_rnn(model, prompt, 300, selection)
    assert r["requests"] == 5 and r["counters"]["errors"] == 0
    assert r["tokens_fed"] == 20 + 300 - 1
    assert r["sim_tokens_per_second"] > 0 and r["core_cycles_per_token"] > 0
    if temperature:
        assert len(set(r["generated"])) > 3


def test_identity_and_payloads_of_a_language_model_round_trip():
    """IDENTITY (version 3) carries the core kind, vocabulary and sampler size; GENERATE
    and SET_SAMPLER payloads pack as the wire specifies."""
    from spikelut.hdl.hostlink import wire

    ident = wire.Identity(
        8, 1, 8, 20, 10, 3, 12_000_000, 1016, bytes(range(16)), tables_valid=True,
        tables_hash=bytes(range(16)), kind=ModelKind.LANGUAGE_MODEL, vocab=256, exp_entries=256,
    )  # fmt: skip
    back = wire.Identity.decode(ident.encode())
    assert back == ident and back.is_language_model and back.max_prompt == 1009
    assert wire.Identity.decode(wire.Identity(8, 1, 8, 8, 4, 1, 1, 64, b"h").encode()).kind == 0
    bad = bytearray(ident.encode())
    bad[1] = 7
    with pytest.raises(ProtocolError, match="unknown core kind"):
        wire.Identity.decode(bytes(bad))
    payload = p.generate_payload(b"abc", 300, start=True, sample=True, seed=0xDEADBEEF)
    assert payload == bytes([3, 0xEF, 0xBE, 0xAD, 0xDE, 0x2C, 0x01]) + b"abc"
    assert p.parse_generate(payload) == (3, 0xDEADBEEF, 300, b"abc")
    assert p.sampler_payload([1, 0x1234]) == b"\x01\x00\x34\x12"
    with pytest.raises(ValueError, match="16-bit"):
        p.sampler_payload([1 << 16])
