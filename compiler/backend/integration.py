"""The integration notes of an exported core (``INTEGRATION.md``), rendered from its manifest.

Every figure is quoted from the manifest :func:`~spikelut.compiler.backend.compile.compile_core`
wrote and from the Wishbone peripheral's register map
(:meth:`~spikelut.hdl.wishbone.WishbonePeripheral.register_map`); nothing is recomputed here.
"""

from __future__ import annotations

__all__ = ["describe", "integration_notes"]


def describe(desc: dict) -> str:
    """A port or payload description of the manifest (``describe_shape``) in words."""
    if "array" in desc:
        return f"{desc['length']} × {describe(desc['array'])} ({desc['width']} bits)"
    if "struct" in desc:
        fields = ", ".join(
            f"`{name}` bits {f['offset']}..{f['offset'] + f['width'] - 1}: {describe(f)}"
            for name, f in desc["struct"].items()
            if f["width"]
        )
        return f"{{{fields}}} ({desc['width']} bits)"
    return f"{'signed' if desc['signed'] else 'unsigned'} {desc['width']}-bit"


def _ports(man: dict) -> list[str]:
    rows = [
        "| port | direction | payload |",
        "| --- | --- | --- |",
        "| `clk` | in | clock (every register is on its rising edge) |",
        "| `rst` | in | synchronous reset, active high |",
    ]
    for name, port in man["ports"].items():
        if port.get("kind") == "stream":
            d = port["direction"]
            rows.append(
                f"| `{name}__valid`, `{name}__ready`, `{name}__payload` | {d} stream | "
                f"{describe(port['payload'])} |"
            )
        else:
            rows.append(f"| `{name}` | {port['flow'].lower()} | {describe(port)} |")
    return rows


def _tables(man: dict) -> list[str]:
    rows = [
        "| layer | storage | write port | lanes (P) | words per lane | word bits | "
        "initialised by the bitstream |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    any_memory = False
    for layer in man["layers"]:
        if layer["storage"] == "logic":
            rows.append(f"| {layer['layer']} | logic (constants) | none | | | | yes |")
            continue
        any_memory = True
        rows.append(
            f"| {layer['layer']} | {layer['storage']} | `w{layer['layer']}_stream` | "
            f"{layer['tables_per_cycle']} | {layer['memory_words_per_lane']} | "
            f"{layer['memory_word_bits']} | {'no: load it' if layer['load_at_boot'] else 'yes'} |"
        )
    return rows if any_memory or man["layers"] else []


def _wishbone(reg: dict) -> list[str]:
    r = reg["registers"]
    lines = [
        "## Wishbone B4 peripheral (`spikelut_wb.v`)",
        "",
        "A 32-bit Wishbone B4 classic slave around the same core: `wb_adr_i` "
        f"({reg['addr_width']} bits) counts 32-bit words, `wb_sel_i` is ignored (whole-word "
        "accesses), `wb_ack_o` answers one cycle after `wb_cyc_i & wb_stb_i` (a table word's "
        "last chunk waits for the core to take it); `irq_o` is high while a result waits. "
        "Clock `clk`, synchronous reset `rst`.",
        "",
        "| word address | register | access |",
        "| --- | --- | --- |",
        f"| {r['STATUS']} | STATUS: bit 0 input FIFO has room, bit 1 a result waits, bit 2 an "
        "input was dropped (FIFO full; write 1 to clear) | read / write |",
        f"| {r['INPUTS']} | INPUTS: input values (bits 0-15), their width (bits 16-23) | read |",
        f"| {r['OUTPUTS']} | OUTPUTS: logits (bits 0-15), their width (bits 16-23) | read |",
        f"| {r['IN']} | IN: the next input value, two's complement; the last value of a vector "
        "starts an inference | write |",
        f"| {r['OUT']} | OUT: bit 31 a result was there, bits 0-30 its class (argmax); the read "
        "removes it | read |",
        f"| {r['LOGIT']}..{r['LOGIT'] + reg['logits'] - 1} | LOGIT i: logit i of the result OUT "
        "returns next, sign-extended | read |",
        f"| {reg['table_base']}.. | table window (below) | write |",
        "",
        "One inference: write the input values to IN in order, poll STATUS bit 1 (or wait for "
        "`irq_o`), read the logits if wanted, then read OUT.",
    ]
    if reg["table_layers"]:
        lines += [
            "",
            "Table window: word `base + (((lane << addr_bits) | addr) << slot_bits | slot)` "
            "holds bits `32 * slot` and up of word `addr` of lane `lane` (entry 0 in the low "
            "bits); writing the last slot writes the word.",
            "",
            "| layer | base | lanes | words per lane | word bits | addr_bits | slot_bits |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {t['layer']} | {t['base']} | {t['lanes']} | {t['depth']} | {t['word_bits']} | "
            f"{t['addr_bits']} | {t['slot_bits']} |"
            for t in reg["table_layers"]
        ]
    return [*lines, ""]


def integration_notes(name: str, man: dict, info: dict) -> str:
    """The markdown notes of the export ``info`` (``export.json``) of a core with manifest
    ``man``."""
    est = man.get("estimate") or {}
    lines = [
        f"# {name}: spikelut core `{info['toplevel']}`",
        "",
        f"A {man['indexer']} LUT-network classifier core compiled for {man['target']} by "
        "spikelut. `core.v` holds the module and its submodules; `manifest.json` is the "
        "machine-readable description every figure below is quoted from.",
        "",
        "## Ports",
        "",
        *_ports(man),
        "",
        "## Stream handshake",
        "",
        "Every `*_stream` is a valid/ready stream: a transfer happens on a rising edge of "
        "`clk` where both `valid` and `ready` are high. A sender keeps `valid` high and "
        "`payload` unchanged until the transfer and never waits for `ready` before raising "
        "`valid`. `i_stream` takes one input vector a transfer (value 0 in the low bits); "
        "`o_stream` gives one result a transfer: the class `index` (argmax, ties to the lowest "
        "index) and the `logits`.",
        "",
        "## Table write ports",
        "",
        "A memory-backed layer `k` has `wK_stream`: one transfer writes one word (`data`, "
        "entries low first) at `addr` of lane `lane`. Memories the bitstream does not "
        "initialise (SPRAM) must be written in full before the first inference; the others "
        "start with the model's tables and can be rewritten with another model of the same "
        "shape.",
        "",
        *_tables(man),
        "",
        "## Timing",
        "",
        f"- cycles per inference (one result every so many cycles at full rate): "
        f"{man['cycles_per_inference']}",
        f"- latency: {man['latency_cycles']} cycles from an input vector's first offer to its "
        "result's transfer",
        f"- memory-bandwidth floor: {man['bandwidth_floor_cycles']} cycles "
        f"({man['bandwidth_fraction']:.0%} of it reached)",
        f"- at {man['clock_mhz']:g} MHz: {man['inferences_per_second']:,.0f} inferences/s",
        "",
        "## Resources (estimate)",
        "",
        f"About {est.get('logic_cells', '?')} logic cells ({est.get('luts', '?')} LUT4s, "
        f"{est.get('flip_flops', '?')} flip-flops), {man['block_rams']} block RAMs and "
        f"{man['sprams']} SPRAMs on {man['target']} ({est.get('family', '?')}); the device "
        f"leaves {man['logic_cells_available']} logic cells beside spikelut's own host link. "
        "The estimate is spikelut's; synthesis decides.",
        "",
    ]
    if info["register_map"]:
        lines += _wishbone(info["register_map"])
    lines += [
        "## FuseSoC",
        "",
        f"`{info['name']}.core` names the core `{info['fusesoc']}`:",
        "",
        "```sh",
        f"fusesoc --cores-root . run --target lint {info['fusesoc']}",
    ]
    if info["register_map"]:
        lines += [
            f"fusesoc --cores-root . run --target lint_wishbone {info['fusesoc']}",
            f"fusesoc --cores-root . run --target sim_wishbone {info['fusesoc']}",
        ]
    lines += ["```", ""]
    return "\n".join(lines)
