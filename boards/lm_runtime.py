"""The host runtime of a language model on a board: generate text and check every byte.

:func:`generate_on_board` identifies the board (a language model of the model's vocabulary),
makes it hold the model's tables as :func:`~spikelut.boards.runtime.ensure_tables` does for a
classifier, writes the sampler's exponential table when sampling, and generates in requests
of ``chunk`` tokens: one GENERATE with START and the prompt (a prompt longer than one request
holds goes in pieces, the answers between them dropped), then continuations with empty
prompts (:mod:`spikelut.hdl.hostlink.wire`, "Language models"). Every byte is compared with
:func:`~spikelut.compiler.ir.golden.generate_lm`; the result reports the tokens, the
mismatches, the tokens per second through the link and the board's cycles per token (its
cycle counter over the tokens its core took, prompt tokens included).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from spikelut.boards.design import BuildTables, model_hash
from spikelut.boards.host import BoardClient
from spikelut.boards.lm_design import lm_tables
from spikelut.boards.runtime import BoardMismatch, ensure_tables
from spikelut.compiler import progress as progress_display
from spikelut.compiler.ir.golden import generate_lm
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.selection import Selection

__all__ = ["DEFAULT_CHUNK", "generate_on_board"]

DEFAULT_CHUNK = 64  # tokens a GENERATE asks for


def _check_board(link: BoardClient, model: IntegerRNN | IntegerTransformer, selection: Selection):
    ident = link.identify()
    if not ident.is_language_model:
        raise BoardMismatch("the board runs a classifier, not a language model")
    if ident.vocab != model.vocab:
        raise BoardMismatch(
            f"the board's language model has {ident.vocab} tokens, the model {model.vocab}"
        )
    if not selection.greedy and len(selection.exp) != ident.exp_entries:
        raise BoardMismatch(
            f"the board's sampler has {ident.exp_entries} weights, the rule {len(selection.exp)}"
        )
    return ident


def generate_on_board(
    link: BoardClient,
    model: IntegerRNN | IntegerTransformer,
    prompt: bytes,
    n: int,
    selection: Selection,
    *,
    chunk: int = DEFAULT_CHUNK,
    build: BuildTables | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Generate ``n`` tokens after ``prompt`` (at least one token, each below the
    vocabulary) on the board behind ``link`` by ``selection``, checking each against the
    golden model. ``build``: what loading the model's tables takes (as
    :func:`~spikelut.boards.runtime.ensure_tables`). Raises :class:`BoardMismatch` when the
    board cannot run the model, ValueError for a bad prompt, count or chunk.

    Result keys: ``n``, ``agree`` (tokens equal to the golden model's), ``mismatches``
    (first positions that differ), ``generated`` and ``golden`` (latin-1 text), ``requests``
    (GENERATEs sent), ``seconds``, ``tokens_per_second`` (generated tokens over the wall
    time of the GENERATEs), ``tokens_fed`` (the core's answers by the counters, prompt
    included), ``core_cycles_per_token``, ``table_frames``, ``identity``, ``counters``,
    ``greedy``, ``seed``.
    """
    prompt = bytes(prompt)
    if not prompt:
        raise ValueError("generation needs a prompt of at least one byte")
    if max(prompt) >= model.vocab:
        raise ValueError(
            f"the prompt holds byte {max(prompt)}; the model's tokens are 0..{model.vocab - 1}"
        )
    if n < 1:
        raise ValueError(f"generate at least one token, not {n}")
    ident = _check_board(link, model, selection)
    chunk = min(chunk, ident.max_generate)
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, not {chunk}")
    frames = ensure_tables(link, model, build, tables=lm_tables(model), progress=progress)
    ident = link.identity
    sample = not selection.greedy
    if sample:
        link.set_sampler(selection.exp)
    golden = generate_lm(model, prompt, n, selection)
    before = link.read_counters()
    progress(f"run: {len(prompt)} prompt tokens, {n} tokens in requests of {chunk}")
    kw = {"sample": sample, "seed": selection.seed}
    pieces = [prompt[i : i + ident.max_prompt] for i in range(0, len(prompt), ident.max_prompt)]
    start = time.monotonic()
    got = bytearray()
    with progress_display.task("tokens from the board", n, "tokens") as shown:
        for k, piece in enumerate(pieces[:-1]):  # a long prompt: its answers are not wanted
            link.generate(piece, 1, start=k == 0, **kw)
        got += link.generate(pieces[-1], min(chunk, n), start=len(pieces) == 1, **kw)
        shown.update(completed=len(got))
        requests = len(pieces)
        while len(got) < n:
            got += link.generate(b"", min(chunk, n - len(got)), start=False, **kw)
            requests += 1
            shown.update(completed=len(got))
    seconds = time.monotonic() - start
    after = link.read_counters()
    fed = after.inferences - before.inferences
    diff = [i for i, (a, b) in enumerate(zip(got, golden, strict=True)) if a != b]
    return {
        "n": n,
        "agree": n - len(diff),
        "mismatches": diff[:20],
        "generated": bytes(got).decode("latin-1"),
        "golden": golden.decode("latin-1"),
        "prompt_tokens": len(prompt),
        "requests": requests,
        "chunk": chunk,
        "seconds": seconds,
        "tokens_per_second": n / seconds if seconds > 0 else 0.0,
        "tokens_fed": fed,
        "core_cycles_per_token": (after.cycles - before.cycles) / fed if fed else None,
        "table_frames": frames,
        "greedy": selection.greedy,
        "seed": selection.seed,
        "identity": {
            "clock_hz": ident.clock_hz,
            "vocab": ident.vocab,
            "max_payload": ident.max_payload,
            "model_hash": ident.model_hash.hex(),
            "shape_hash": ident.shape_hash.hex(),
            "tables_hash": link.identify().tables_hash.hex(),
            "expected_hash": model_hash(model).hex(),
        },
        "counters": {
            "inferences": after.inferences,
            "errors": after.errors,
            "frames": after.frames,
            "cycles": after.cycles,
        },
    }
