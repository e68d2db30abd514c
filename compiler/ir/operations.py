"""Operations and memory per inference: the one count every figure of spikelut uses.

A LUT layer of ``N_T`` tables of ``N_C`` anchor pairs, ``Y`` outputs and ``b``-bit entries
does, per input vector:

- ``N_T * N_C`` comparisons (one per anchor pair);
- ``N_T`` table rows read, ``N_T * Y`` entries, ``N_T * Y * b`` bits;
- ``(N_T - 1) * Y`` additions to sum the selected rows, plus ``Y`` for a residual add;
- no multiplication; its tables hold ``N_T * 2**N_C * Y * b`` bits.

A classifier adds its argmax: ``n_classes - 1`` comparisons.

A dense layer of ``D`` inputs and ``Y`` outputs does ``D * Y`` multiply-accumulates (each a
multiplication and an addition onto the bias, the accumulator's start value) and reads its
``D * Y`` weights and ``Y`` biases; a ReLU costs ``Y`` comparisons; a classifier's argmax
``Y - 1``.

Everything that reports operation or memory figures (conversion, the demo's summary, the
report, the MAC baseline's manifest, the benches) calls these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ANN_WEIGHT_BITS",
    "classifier_operations",
    "dense_operations",
    "layer_table_bits",
    "lut_layer_operations",
    "table_memory_bits",
    "versus_dense",
]

# bits per weight of the dense network a LUT network is compared with (the MAC baseline's)
ANN_WEIGHT_BITS = 8


def layer_table_bits(model, entry_bits: int | Sequence[int] | None = None) -> list[int]:
    """Bits per table entry of every layer of a classifier: its ``table_bits`` when it is
    quantised, else ``entry_bits`` (one for all layers or one per layer; default 8)."""
    n = len(model.layers)
    if entry_bits is None:
        if model.quant is not None:
            return [q.table_bits for q in model.quant]
        entry_bits = ANN_WEIGHT_BITS
    if isinstance(entry_bits, int):
        return [entry_bits] * n
    bits = [int(b) for b in entry_bits]
    if len(bits) != n:
        raise ValueError(f"entry_bits needs one entry per layer ({n}), not {bits!r}")
    return bits


def lut_layer_operations(layer, bits: int) -> dict[str, int]:
    """Per-inference figures of one :class:`~spikelut.compiler.ir.lut.LUTLayer` with
    ``bits``-bit entries (see the module docstring)."""
    n_t, y = layer.n_tables, layer.out_dim
    return {
        "comparisons": n_t * layer.n_c,
        "table_rows_read": n_t,
        "table_entries_read": n_t * y,
        "table_bits_read": n_t * y * bits,
        "additions": (n_t - 1) * y + (y if layer.residual else 0),
        "multiplications": 0,
        "table_memory_bits": layer.memory_bits(bits),
    }


def classifier_operations(model, entry_bits: int | Sequence[int] | None = None) -> dict:
    """Per-inference figures of a :class:`~spikelut.compiler.ir.classifier.ClassifierMLP`:
    ``{"layers": [...], "argmax_comparisons", "total": {...}}``; the total's
    ``comparisons`` include the argmax's. Entry bits as :func:`layer_table_bits`."""
    bits = layer_table_bits(model, entry_bits)
    layers = [
        {"layer": k, "table_bits": b, **lut_layer_operations(layer, b)}
        for k, (layer, b) in enumerate(zip(model.layers, bits, strict=True))
    ]
    argmax = model.n_classes - 1
    total = {key: sum(r[key] for r in layers) for key in layers[0] if key not in ("layer",)}
    del total["table_bits"]
    total["comparisons"] += argmax
    return {"layers": layers, "argmax_comparisons": argmax, "total": total}


def table_memory_bits(model, entry_bits: int | Sequence[int] | None = None) -> int:
    """Table memory of a classifier in bits (entry bits as :func:`layer_table_bits`)."""
    return classifier_operations(model, entry_bits)["total"]["table_memory_bits"]


def dense_operations(
    shapes: Sequence[tuple[int, int]],
    activations: Sequence[str] | None = None,
    *,
    weight_bits: int = ANN_WEIGHT_BITS,
) -> dict[str, int]:
    """Per-inference figures of a dense classifier with layers of ``(D, Y)`` ``shapes`` and
    ``activations`` (``"relu"`` counts ``Y`` comparisons; default: ReLU on every hidden
    layer, none on the last), ``weight_bits`` per weight."""
    shapes = [(int(d), int(y)) for d, y in shapes]
    if activations is None:
        activations = ["relu"] * (len(shapes) - 1) + ["identity"]
    macs = sum(d * y for d, y in shapes)
    params = macs + sum(y for _, y in shapes)
    relu = sum(y for (_, y), act in zip(shapes, activations, strict=True) if act == "relu")
    return {
        "multiply_accumulates": macs,
        "multiplications": macs,
        "additions": macs,
        "parameters_read": params,
        "weight_bits_read": params * weight_bits,
        "weight_memory_bits": params * weight_bits,
        "comparisons": relu + shapes[-1][1] - 1,
    }


def versus_dense(model) -> dict:
    """A LUT classifier against the dense network of its layer shapes (``D -> Y`` per layer,
    ReLU between, :data:`ANN_WEIGHT_BITS`-bit weights): per-layer and total figures of both,
    keys prefixed ``lut_`` and ``ann_``."""
    lut = classifier_operations(model)
    rows = []
    for k, (layer, ops) in enumerate(zip(model.layers, lut["layers"], strict=True)):
        dense = dense_operations([(layer.in_dim, layer.out_dim)], ["identity"])
        rows.append(
            {
                "layer": k,
                "lut_rows_read": ops["table_rows_read"],
                "lut_entries_read": ops["table_entries_read"],
                "lut_bits_read": ops["table_bits_read"],
                "lut_comparisons": ops["comparisons"],
                "lut_additions": ops["additions"],
                "lut_multiplications": 0,
                "lut_memory_bits": ops["table_memory_bits"],
                "ann_rows_read": layer.in_dim,
                "ann_macs": dense["multiply_accumulates"],
                "ann_parameters_read": dense["parameters_read"],
                "ann_bits_read": dense["weight_bits_read"],
                "ann_memory_bits": dense["weight_memory_bits"],
            }
        )
    total = {key: sum(r[key] for r in rows) for key in rows[0] if key != "layer"}
    total["lut_comparisons"] += lut["argmax_comparisons"]
    shapes = [(layer.in_dim, layer.out_dim) for layer in model.layers]
    total["ann_comparisons"] = dense_operations(shapes)["comparisons"]
    return {"layers": rows, "total": total, "ann_weight_bits": ANN_WEIGHT_BITS}
