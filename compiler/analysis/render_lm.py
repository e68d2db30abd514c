"""The HTML page of ``spikelut report`` for a language model (an integer spiking RNN or LUT
transformer):
:func:`render_lm_html` draws the figures of
:func:`~spikelut.compiler.analysis.figures_lm.collect_lm` section by section
(:data:`LM_SECTIONS`) on the classifier report's page
(:func:`~spikelut.compiler.analysis.render.page`: self-contained, plots as base64 PNGs). A
section whose data is missing says which command produces it (a paragraph of class
``missing``).
"""

from __future__ import annotations

import html
from pathlib import Path

from spikelut.compiler.analysis import plots
from spikelut.compiler.analysis.render import (
    _device_comparison,
    _files,
    _fmax,
    _fmt,
    _img,
    _missing,
    _resources,
    _table,
    _tile,
    page,
)

__all__ = ["LM_SECTIONS", "render_lm_html"]

# (id, heading) of every section of a language model's report, in page order
LM_SECTIONS = [
    ("overview", "At a glance"),
    ("model", "The language model"),
    ("memory", "Memory per layer and its placement"),
    ("loss", "Validation loss: float, integer, hardware"),
    ("throughput", "Throughput: cycles and tokens per second"),
    ("resources", "Resource use on the device"),
    ("files", "Sources"),
]

_COMPILE_HINT = "run spikelut compile LM -o DIR and report on LM and DIR"
_BUILD_HINT = "run spikelut build LM --board icebreaker -o DIR and report on LM and DIR"
_SIM_HINT = (
    "run spikelut sim LM --data TEXT --json > DIR/sim.json (or python bench/lm_board.py LM "
    "--json DIR/lm-board.json) and report on LM and DIR"
)


def render_lm_html(r: dict) -> str:
    """The self-contained HTML page for the figures of
    :func:`~spikelut.compiler.analysis.figures_lm.collect_lm`."""
    return page(r, LM_SECTIONS, _RENDER)


def _nats(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _cycles_per_token(r: dict) -> tuple[float | None, str]:
    """The cycles per generated token of the bitstream's core (``board.json``), else the
    compiled core's (``manifest.json``), and which."""
    board, m = r["board"] or {}, r["manifest"] or {}
    if board.get("cycles_per_token"):
        return board["cycles_per_token"], "bitstream"
    if m.get("cycles_per_token"):
        return m["cycles_per_token"], "compiled core"
    return None, ""


# -- overview -------------------------------------------------------------------------------


def _overview(r: dict) -> str:
    s, losses = r["shape"], r["losses"]
    table_bits = sum(m["memory_bits"] for m in r["memories"])
    tiles = []
    if losses["float"] is not None:
        tiles.append(_tile(_nats(losses["float"]), "float validation loss (nats/byte)"))
    if losses["integer"] is not None:
        tiles.append(_tile(_nats(losses["integer"]), "integer validation loss (nats/byte)"))
    if losses["status"] == "equal":
        tiles.append(_tile(_nats(losses["hardware"]), "hardware validation loss (nats/byte)"))
    if losses["runs"]:
        tiles.append(_tile(f"{losses['mismatches']:,}", "mismatches against the golden model"))
    tiles.append(_tile(f"{table_bits / 8192:,.1f} kB", "embedding and table memory"))
    cycles, which = _cycles_per_token(r)
    if cycles:
        tiles.append(_tile(f"{_fmt(cycles)}", f"cycles per token ({which})"))
    board = r["board"] or {}
    if board.get("tokens_per_second"):
        tiles.append(_tile(f"{board['tokens_per_second']:,.0f}", "tokens/s at the board clock"))
    elif (r["manifest"] or {}).get("tokens_per_second"):
        tiles.append(
            _tile(f"{r['manifest']['tokens_per_second']:,.0f}", "tokens/s at the target clock")
        )
    cells = ((r["build"] or {}).get("resources") or {}).get("logic_cells")
    if cells:
        tiles.append(_tile(f"{cells['used']:,}", f"logic cells of {cells['available']:,}"))
    return f'<div class="tiles">{"".join(tiles)}</div><p class="note">{_summary(s)}</p>'


def _summary(s: dict) -> str:
    """One sentence on the model's shape."""
    unemb = s["luts"][-1]
    tail = (
        f"an unembedder of {unemb['n_tables']} tables x N_C {unemb['n_c']}. It chooses one "
        "byte per step; no multiplications."
    )
    if s["kind"] == "transformer":
        attn = s["luts"][0]
        return (
            f"An integer LUT transformer language model: {s['vocab']} tokens, a residual "
            f"stream of {s['dim']}, context {s['context']}; {s['layers']} layer(s) of "
            f"{s['heads']} attention head(s) (attention as one table indexed by query, key "
            f"and relative position: {attn['rows_per_table']:,} rows a table) and an FFN; " + tail
        )
    cell = s["luts"][0]
    return (
        f"An integer spiking RNN language model: {s['vocab']} tokens, {s['dim']} neurons, "
        f"context {s['context']}; a cell of {cell['n_tables']} tables x N_C {cell['n_c']} and "
        + tail
    )


# -- the model ------------------------------------------------------------------------------

_LUT_COLUMNS = [
    ("LUT", "lut"),
    ("D", "in_dim"),
    ("Y", "out_dim"),
    ("N_T", "n_tables"),
    ("N_C", "n_c"),
    ("rows/table", "rows_per_table"),
    ("comparisons", "comparisons"),
    ("table bits", "table_bits"),
    ("in shift", "in_shift"),
    ("scale (log2)", "scale_log2"),
    ("table memory (bits)", "table_memory_bits"),
]

_WIDTH_COLUMNS = [
    ("in width", "in_width"),
    ("compare width", "compare_width"),
    ("accumulator", "acc_width"),
    ("out width", "out_width"),
]


def _model(r: dict) -> str:
    s = r["shape"]
    facts = list(s["facts"])
    if s["train_steps"] is not None:
        facts.append(["training steps", s["train_steps"]])
    out = _table(["figure", "value"], facts)
    out += _table(
        [head for head, _ in _LUT_COLUMNS], [[d[k] for _, k in _LUT_COLUMNS] for d in s["luts"]]
    )
    if s["state_width"] is None:
        return out + _missing(f"Widths: {s['width_error']}")
    state = "residual stream" if s["kind"] == "transformer" else "recurrent state"
    out += (
        "<p class=note>Widths inferred from exact bounds of the table contents and the "
        f"{state} (overflow impossible by construction):</p>"
    )
    return out + _table(
        ["LUT"] + [head for head, _ in _WIDTH_COLUMNS],
        [[d["lut"]] + [d[k] for _, k in _WIDTH_COLUMNS] for d in s["luts"]],
    )


# -- memory ---------------------------------------------------------------------------------


def _where(p: dict | None, memory: str) -> str:
    """A memory's placement: storage, tables read per cycle (P) and outputs per beat (L;
    the embedding reads L values of its row a clock)."""
    if p is None:
        return "-"
    if memory == "embedding":
        return f"{p['storage']} (L {_fmt(p['lanes'])})"
    return f"{p['storage']} (P {_fmt(p['tables_per_cycle'])}, L {_fmt(p['lanes'])})"


def _memory(r: dict) -> str:
    rows = [
        [
            m["memory"],
            m["shape"],
            m["entry_bits"],
            m["memory_bits"],
            _where(m["compiled"], m["memory"]),
            _where(m["built"], m["memory"]),
        ]
        for m in r["memories"]
    ]
    total = sum(m["memory_bits"] for m in r["memories"])
    rows.append(["total", "", "", total, "", ""])
    out = _table(["memory", "shape", "entry bits", "bits", "compiled core", "bitstream"], rows)
    out += (
        "<p class=note>P: tables read per cycle; L: outputs per beat. SPRAM "
        "is not initialised by the bitstream: what lives there is loaded at boot from the "
        "configuration flash or over the host link.</p>"
    )
    m, board = r["manifest"], r["board"]
    if board and isinstance(board.get("planned"), dict):
        p = board["planned"]
        est = p.get("estimate") or {}
        cells = est.get("logic_cells")
        out += (
            f"<p>The bitstream's core (placed for area on {html.escape(str(board.get('board', '?')))}) "
            f"takes {_fmt(p.get('block_rams'))} block RAM(s) and {_fmt(p.get('sprams'))} SPRAM(s)"
            + (f", about {_fmt(cells)} logic cells (estimate).</p>" if cells else ".</p>")
        )
    if not m:
        return out + _missing(
            f"No compile manifest here: {_COMPILE_HINT} to see the compiled placement."
        )
    est = m.get("estimate") or {}
    out += (
        f"<p>The compiled core on <code>{html.escape(str(m.get('target', '?')))}</code> "
        f"({html.escape(str(m.get('indexer', '?')))} indexing) takes {_fmt(m.get('block_rams'))} "
        f"block RAM(s) and {_fmt(m.get('sprams'))} SPRAM(s)"
        + (
            f", about {est['logic_cells']:,} logic cells (estimate) of "
            f"{_fmt(m.get('logic_cells_available'))} for the core.</p>"
            if est.get("logic_cells") is not None
            else ".</p>"
        )
    )
    if not board:
        out += _missing(f"No board build here: {_BUILD_HINT} to see the bitstream's placement.")
    return out + _device_comparison(m, est, r.get("device_memories"))


# -- loss -----------------------------------------------------------------------------------


def _loss(r: dict) -> str:
    losses = r["losses"]
    out = ""
    if losses["source"] is None:
        out += _missing(
            "No validation losses in the model: spikelut quantize FLOAT --data TEXT -o LM "
            "records the float and integer losses on the training run's held-out windows."
        )
    status = losses["status"]
    if status == "equal":
        hw = f"{_nats(losses['hardware'])} (equal to the integer loss)"
    elif status == "mismatch":
        hw = "not measured (the hardware differs from the golden model)"
    else:
        hw = "not measured"
    rows = [
        ["float (the trained model)", _nats(losses["float"])],
        ["integer (the golden model)", _nats(losses["integer"])],
        ["hardware", hw],
        ["a uniform guess (ln V)", _nats(losses["uniform"])],
    ]
    out += _table(["validation loss", "nats per byte"], rows)
    if losses["source"]:
        where = f" on {html.escape(str(losses['data']))}" if losses["data"] else ""
        n = f", {losses['n_windows']:,} windows" if losses.get("n_windows") else ""
        out += f"<p class=note>Float and integer from {losses['source']}{where}{n}.</p>"
    if status == "equal":
        out += (
            f"<p>The simulated hardware chose every byte as the golden model "
            f"({losses['tokens_checked']:,} tokens checked in {losses['runs']} run(s), 0 "
            "mismatches): the hardware computes the integer model exactly, so its loss is "
            "the integer loss.</p>"
        )
    elif status == "mismatch":
        out += (
            f'<p class="warn">The simulations report {losses["mismatches"]:,} mismatch(es) '
            f"against the golden model in {losses['tokens_checked']:,} tokens: the hardware's "
            "loss is not the integer loss and is not measured here.</p>"
        )
    else:
        out += _missing(
            f"No simulation here to compare the hardware with the golden model: {_SIM_HINT}."
        )
    if r["simulations"]:
        out += _table(
            ["simulation", "rule", "tokens", "mismatches", "cycles/token", "file"],
            [
                [
                    s["what"],
                    s["rule"],
                    s["tokens"],
                    s["mismatches"],
                    s["cycles_per_token"],
                    s["file"],
                ]
                for s in r["simulations"]
            ],
        )
    values = [
        (name, v)
        for name, v in (
            ("float", losses["float"]),
            ("integer", losses["integer"]),
            ("hardware", losses["hardware"]),
        )
        if v is not None
    ]
    if values:
        out += _img(plots.losses(values, losses["uniform"]), "validation losses")
    return out


# -- throughput -----------------------------------------------------------------------------


def _throughput_rows(r: dict) -> list[tuple]:
    """``(what, bar label or None, cycles per token, clock MHz, tokens per second, from)``
    of every rate the sources give: the compiled core's floor, measured greedy and sampled
    cycles (``manifest.json``), the bitstream's core at the board clock, at the Fmax and
    through the UART (``board.json``, ``build-report.json``), and each simulation."""
    m, board = r["manifest"] or {}, r["board"] or {}
    rows = []
    if m:
        clock = m.get("clock_mhz")
        rows.append(("table-bandwidth floor (compiled core)", "floor",
                     m.get("table_cycles_per_token"), None, None, "manifest.json"))  # fmt: skip
        rows.append(("compiled core, greedy (measured)", "compiled", m.get("cycles_per_token"),
                     clock, m.get("tokens_per_second"), "manifest.json"))  # fmt: skip
        sampled = m.get("sampled_cycles_per_token")
        if sampled and clock:
            rows.append(("compiled core, sampled (at most)", "sampled", sampled, clock,
                         clock * 1e6 / sampled, "manifest.json"))  # fmt: skip
    cpt = board.get("cycles_per_token")
    if cpt:
        clock = board.get("target_mhz")
        rows.append(("bitstream's core at the board clock", "bitstream", cpt, clock,
                     board.get("tokens_per_second"), "board.json"))  # fmt: skip
        fmax = _fmax(r["build"])
        if fmax:
            rows.append(("bitstream's core at the achieved Fmax", None, cpt, fmax,
                         fmax * 1e6 / cpt, "build-report.json"))  # fmt: skip
        if board.get("uart_tokens_per_second"):
            rows.append((f"bitstream through the UART at {_fmt(board.get('baud'))} baud", None,
                         cpt, clock, board["uart_tokens_per_second"], "board.json"))  # fmt: skip
    for k, sim in enumerate(r["simulations"]):
        if sim["cycles_per_token"] is None and sim["uart_tokens_per_second"] is None:
            continue
        what = f"simulated: {sim['what']}, {sim['rule']}"
        if sim["uart_tokens_per_second"] is not None and sim["baud"]:
            what += f", at {_fmt(sim['baud'])} baud"
        rows.append((what, f"sim {k + 1}", sim["cycles_per_token"], None,
                     sim["uart_tokens_per_second"], Path(sim["file"]).name))  # fmt: skip
    return rows


def _throughput(r: dict) -> str:
    m, board = r["manifest"], r["board"]
    rows = _throughput_rows(r)
    out = ""
    if rows:
        out += _table(
            ["", "cycles per token", "clock", "tokens per second", "from"],
            [[what, cycles, _mhz(clock), rate, src] for what, _, cycles, clock, rate, src in rows],
        )
        bars = [(label, float(c)) for _, label, c, *_ in rows if label and _is_number(c)]
        if bars:
            out += _img(plots.token_cycles(bars), "cycles per token against the floor")
    if m and r["shape"]["kind"] == "transformer":
        out += (
            "<p class=note>A generated token is the next input. Each head computes the new "
            "token's query and key indices once and keeps the key side of every earlier "
            "position (the V-index cache): a token at position t reads t x N_T rows a head, "
            "so the floor is averaged over a full window; the measured cycles (Amaranth's "
            "simulator, a full window) add the pipeline and the choice of the byte. The "
            "layers' reads:</p>"
        )
        out += _table(["layer", "storage", "P", "L", "cycles", "cache bits"],
                      _transformer_reads(m))  # fmt: skip
    elif m:
        luts = [
            [lut.get("lut"), lut.get("storage"), lut.get("tables_per_cycle"), lut.get("lanes"),
             lut.get("cycles"), lut.get("bandwidth_floor_cycles")]
            for lut in m.get("luts") or []
            if isinstance(lut, dict)
        ]  # fmt: skip
        out += (
            "<p class=note>A generated token is the next input: the embedding's, the cell's "
            "and the unembedder's reads do not overlap and add up to the floor; the measured "
            "cycles (Amaranth's simulator) add the pipeline and the choice of the byte. The "
            "LUTs' reads:</p>"
        )
        out += _table(["LUT", "storage", "P", "L", "cycles", "bandwidth floor"], luts)
        if _is_number(m.get("latency_cycles")):
            out += f"<p class=note>Latency of the first token: {m['latency_cycles']:,} cycles.</p>"
    else:
        out += _missing(
            f"No compile manifest here: {_COMPILE_HINT} to see cycles per token against the "
            "table-bandwidth floor."
        )
    if not board:
        out += _missing(
            f"No board build here: {_BUILD_HINT} to see tokens per second at the board clock "
            "and through the UART."
        )
    return out


def _transformer_reads(m: dict) -> list[list]:
    """Rows of a transformer manifest's ``layers``: each layer's attention (cycles at a
    full context) and FFN."""
    rows = []
    for layer in m.get("layers") or []:
        if not isinstance(layer, dict):
            continue
        a, f = layer.get("attention") or {}, layer.get("ffn") or {}
        rows.append([f"attention {layer.get('layer')} ({layer.get('heads')} heads, full "
                     "context)", a.get("storage"), a.get("tables_per_cycle"), a.get("lanes"),
                     a.get("cycles_at_full_context"), a.get("cache_bits")])  # fmt: skip
        rows.append([f"ffn {layer.get('layer')}", f.get("storage"), f.get("tables_per_cycle"),
                     f.get("lanes"), f.get("cycles"), None])  # fmt: skip
    return rows


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _mhz(v) -> str:
    return "-" if not v else f"{v:.1f} MHz"


# -- resources and sources ------------------------------------------------------------------


def _lm_resources(r: dict) -> str:
    if not r["build"]:
        return _missing(
            f"No build-report.json here: {_BUILD_HINT} to see the resource use and Fmax."
        )
    return _resources(r)


_RENDER = {
    "overview": _overview,
    "model": _model,
    "memory": _memory,
    "loss": _loss,
    "throughput": _throughput,
    "resources": _lm_resources,
    "files": _files,
}
