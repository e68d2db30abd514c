"""``spikelut quantize``: a float model to an integer model, with widths and agreement.

Prints, per layer: input/comparator/accumulator/output widths, the input shift, the scale and
the table memory in bits; then the float-versus-integer figures on the test split (accuracy
of both and agreement of predictions for classifiers; validation loss for language models).
Writes the integer model atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from spikelut.cli import output
from spikelut.cli.common import (
    check_outputs,
    load_model_file,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.frontend.text import load_text, text_fingerprint, training_split, windows
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.ir.modelfile import save_model
from spikelut.compiler.ir.sequence import SpikingRNN, TransformerLM
from spikelut.compiler.passes.evaluate import (
    LM_CALIB_WINDOWS,
    LM_TRANSFORMER_CALIB_WINDOWS,
    LM_TRANSFORMER_VAL_WINDOWS,
    int_predict,
    int_val_loss,
)
from spikelut.compiler.passes.narrowing import centre_inputs
from spikelut.compiler.passes.prune import DEFAULT_PRUNE_EPOCHS, prune_classifier
from spikelut.compiler.passes.quant_aware import quantize_aware
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.passes.quantize_sequence import quantize_rnn, quantize_transformer
from spikelut.compiler.passes.scales import DEFAULT_TABLE_BITS, QuantizeError
from spikelut.compiler.passes.widths import (
    DEFAULT_MAX_WIDTH,
    WidthError,
    infer_widths,
    rnn_widths,
    transformer_widths,
)


def add_parser(sub: Any) -> None:
    """Register the ``quantize`` subcommand."""
    p = sub.add_parser(
        "quantize",
        help="quantise a float model to integers and report widths and accuracy",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("model", metavar="MODEL", help="float .lutnet model")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_INT", help="integer model out")
    p.add_argument(
        "--bits",
        type=int,
        default=DEFAULT_TABLE_BITS,
        metavar="N",
        help=f"signed width of table entries, 2..16 (default {DEFAULT_TABLE_BITS})",
    )
    p.add_argument(
        "--shift",
        action="append",
        default=[],
        metavar="LAYER=BITS",
        help="arithmetic right shift of a layer's input before its comparators (repeatable; "
        "layer 0 defaults to the shift the model was trained for, train classifier --in-shift)",
    )
    p.add_argument(
        "--search-shift",
        action="store_true",
        help="choose each layer's input shift on the calibration (training) data",
    )
    p.add_argument(
        "--shift-tolerance",
        type=non_negative_float,
        default=0.2,
        metavar="PP",
        help="agreement loss in percentage points a searched shift may cost (default 0.2)",
    )
    p.add_argument(
        "--max-width",
        type=positive_int,
        default=DEFAULT_MAX_WIDTH,
        metavar="W",
        help=f"refuse a network needing registers wider than W bits (default {DEFAULT_MAX_WIDTH})",
    )
    p.add_argument(
        "--data",
        metavar="NAME|FILE",
        help="classifiers: data set for calibration and evaluation (default: the one the model "
        "was trained on); language models: the training text",
    )
    p.add_argument(
        "--val-windows",
        type=positive_int,
        metavar="N",
        help="language models: evaluate on the first N validation windows (default: all for "
        "an RNN, 1000 for a transformer)",
    )
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="choose scales from the table ranges alone, without calibration data",
    )
    p.add_argument(
        "--centre-inputs",
        action="store_true",
        help="classifiers with non-negative integer features (pixels): encode them centred, "
        "one bit narrower, every output unchanged (raw values below 0 read as 0)",
    )
    p.add_argument(
        "--prune-to",
        type=positive_int,
        metavar="K",
        help="classifiers: each class sums at most K tables of the last layer (pruned per "
        "output, kept entries fine-tuned on the training split; for the frozen core)",
    )
    p.add_argument(
        "--prune-epochs",
        type=non_negative_int,
        default=DEFAULT_PRUNE_EPOCHS,
        metavar="N",
        help=f"fine-tuning epochs of --prune-to (default {DEFAULT_PRUNE_EPOCHS})",
    )
    p.add_argument(
        "--qat-epochs",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="classifiers: N epochs of quantisation-aware fine-tuning on the training split "
        "(the forward pass reads the tables as they will be quantised) before the final "
        "quantisation (default 0: none)",
    )
    p.add_argument(
        "--coarsen",
        type=non_negative_int,
        default=0,
        metavar="D",
        help="classifiers: table scales D powers of two coarser than calibration picks "
        "(fewer levels and more zero entries: a smaller frozen core; recover the accuracy "
        "with --qat-epochs) (default 0)",
    )
    output.add_json_flag(p)
    p.set_defaults(func=run)


def parse_shifts(items: list[str]) -> dict[int, int]:
    """``["1=2", "0=1"]`` -> ``{1: 2, 0: 1}``; raises :class:`UserError` on bad syntax."""
    shifts = {}
    for item in items:
        layer, sep, bits = item.partition("=")
        try:
            if not sep:
                raise ValueError
            k, s = int(layer), int(bits)
        except ValueError:
            raise UserError(f"--shift {item!r}: write LAYER=BITS, e.g. --shift 1=2") from None
        if k in shifts:
            raise UserError(f"--shift: layer {k} is given twice")
        shifts[k] = s
    return shifts


def _layer_shifts(items: list[str], model: ClassifierMLP) -> dict[int, int]:
    """The ``--shift`` items as ``{layer: shift}``; layer 0, when not given, takes the shift
    its tables were trained for (``train classifier --in-shift``, learned with its ties)."""
    shifts = parse_shifts(items)
    if model.float_in_shift and 0 not in shifts:
        shifts[0] = model.float_in_shift
    return shifts


def _check_flags(args: argparse.Namespace, model: Any) -> None:
    """Refuse flags that do not apply to ``model``, or to each other."""
    aware = args.qat_epochs or args.coarsen
    if not isinstance(model, ClassifierMLP) and (
        args.prune_to is not None or args.centre_inputs or aware
    ):
        raise UserError(
            "--prune-to, --centre-inputs, --qat-epochs and --coarsen are for classifiers, "
            "not language models"
        )
    if aware and args.no_calibrate:
        raise UserError(
            "--qat-epochs and --coarsen train on the training split; drop --no-calibrate"
        )


def _quantize(args: argparse.Namespace, model: ClassifierMLP, ds) -> ClassifierMLP:
    """The integer network of float ``model``: quantised on the training split of ``ds``
    (quantisation-aware with ``--qat-epochs``/``--coarsen``)."""
    options = {
        "shifts": _layer_shifts(args.shift, model),
        "search_shift": args.search_shift,
        "shift_tolerance": args.shift_tolerance / 100.0,
        "max_width": args.max_width,
    }
    if args.qat_epochs or args.coarsen:
        return quantize_aware(
            model, ds.X_train, ds.y_train, table_bits=args.bits, epochs=args.qat_epochs,
            coarsen=args.coarsen, **options,
        )  # fmt: skip
    calib = None if args.no_calibrate and not args.search_shift else ds.X_train
    return quantize_classifier(model, table_bits=args.bits, calib_raw=calib, **options)


def _dataset_name(model: Any) -> str:
    meta = getattr(model, "meta", {}) or {}
    for key in ("dataset", "data"):
        value = meta.get(key)
        if isinstance(value, dict):
            value = value.get("name")
        if isinstance(value, str) and value:
            return value
    return "digits"


def run(args: argparse.Namespace) -> int:
    """Quantise, report, write."""
    check_outputs([args.model, args.data], {"-o": args.output})
    model = load_model_file(args.model)
    _check_flags(args, model)
    if not isinstance(model, ClassifierMLP):
        return _run_sequence(args, model)
    if model.is_integer:
        raise UserError(f"{args.model} is already an integer model; give its float original")
    ds = load_dataset(args.data or _dataset_name(model))
    if ds.n_features != model.encoding.dim:
        raise UserError(
            f"data set {ds.name} has {ds.n_features} features, the model reads "
            f"{model.encoding.dim}; pass the model's data with --data"
        )
    try:
        if args.prune_to is not None:
            model = prune_classifier(
                model, ds.X_train, ds.y_train, keep=args.prune_to, epochs=args.prune_epochs
            )
        qmodel = _quantize(args, model, ds)
        if args.centre_inputs:
            try:
                qmodel = centre_inputs(qmodel)
            except ValueError as e:
                raise UserError(f"--centre-inputs: {e}") from None
        widths = infer_widths(qmodel, max_width=args.max_width)
    except (QuantizeError, WidthError, IRError) as e:
        raise UserError(str(e)) from None
    fp = model.float_predict(ds.X_test)
    ip = int_predict(qmodel, ds.X_test)
    float_acc = float(np.mean(fp == ds.y_test))
    int_acc = float(np.mean(ip == ds.y_test))
    qmodel.meta["quantization"]["evaluation"] = {
        "data": ds.name,
        "split": "test",
        "n": len(ds.y_test),
        "float_accuracy": float_acc,
        "int_accuracy": int_acc,
        "agreement": float(np.mean(fp == ip)),
    }
    save_model(qmodel, args.output)
    result = {
        "model": str(args.model),
        "output": str(args.output),
        "arch": "classifier",
        "table_bits": args.bits,
        "input": {"bits": qmodel.encoding.bits, "frac_bits": qmodel.encoding.frac_bits},
        "layers": [
            {**w.to_dict(), "scale_log2": q.out_scale_log2}
            for w, q in zip(widths, qmodel.quant, strict=True)
        ],
        "table_memory_bits": sum(w.table_memory_bits for w in widths),
        **qmodel.meta["quantization"]["evaluation"],
        "accuracy_loss_pp": 100.0 * (float_acc - int_acc),
        "shifts": qmodel.meta["quantization"]["shifts"],
        "pruning": qmodel.meta.get("pruning"),
        "quantization_aware": qmodel.meta["quantization"].get("aware"),
    }
    for layer in result["layers"]:
        del layer["col_lo"], layer["col_hi"]
    output.emit(args, result, _human)
    return 0


def _human(r: dict) -> str:
    rows = [
        (
            w["layer"],
            w["n_tables"],
            w["n_c"],
            w["out_dim"],
            "yes" if w["residual"] else "no",
            w["table_bits"],
            w["in_shift"],
            w["in_width"],
            w["compare_width"],
            w["acc_width"],
            w["out_width"],
            w["scale_log2"],
            w["table_memory_bits"],
        )
        for w in r["layers"]
    ]
    headers = (
        "layer", "N_T", "N_C", "Y", "residual", "bits", "in_shift",
        "in_w", "cmp_w", "acc_w", "out_w", "scale_log2", "table_mem_bits",
    )  # fmt: skip
    lines = [
        output.table(rows, headers),
        f"input: {r['input']['bits']}-bit integers, {r['input']['frac_bits']} fraction bits; "
        f"table memory {r['table_memory_bits']} bits",
    ]
    if r.get("pruning"):
        pr = r["pruning"]
        lines.append(
            f"pruned: each class sums at most {pr['keep_per_class']} tables; "
            f"{pr['tables_after']} of {pr['tables_before']} tables kept "
            f"({pr['epochs']} fine-tuning epochs)"
        )
    if r.get("quantization_aware"):
        qa = r["quantization_aware"]
        scales = ", ".join(f"layer {k}: 2^{v}" for k, v in qa["scales_log2"].items())
        lines.append(
            f"quantisation-aware: {qa['epochs']} epochs at table scales {scales} "
            f"({qa['coarsen']} coarser than calibration picks)"
        )
    if r["shifts"].get("searched"):
        chosen = ", ".join(f"layer {k}: {v['shift']}" for k, v in r["shifts"]["searched"].items())
        lines.append(f"searched input shifts: {chosen}")
    lines.append(
        f"{r['data']} test split ({r['n']} samples): float accuracy "
        f"{100 * r['float_accuracy']:.2f}%, integer {100 * r['int_accuracy']:.2f}% ({-r['accuracy_loss_pp']:+.2f} pp), "
        f"agreement {100 * r['agreement']:.2f}%"
    )
    lines.append(f"wrote {r['output']}")
    return "\n".join(lines)


def _run_sequence(args: argparse.Namespace, model: Any) -> int:
    """Quantise a language model; validation loss on the training run's held-out windows."""
    if not isinstance(model, (SpikingRNN, TransformerLM)):
        raise UserError(f"{args.model}: a {model.ARCH} model is already quantised or unknown")
    is_rnn = isinstance(model, SpikingRNN)
    if args.search_shift:
        raise UserError("--search-shift is for classifiers; give RNN shifts with --shift")
    shifts = {}
    for k, s in parse_shifts(args.shift).items():
        if not is_rnn or k not in (0, 1):
            raise UserError(
                f"--shift {k}=...: only an RNN takes shifts, on layers 0 (cell) and 1 (unembedder)"
            )
        shifts["cell" if k == 0 else "unembedder"] = s
    data, val_starts, train_starts, source = _lm_split(args, model)
    n_val = args.val_windows or (len(val_starts) if is_rnn else LM_TRANSFORMER_VAL_WINDOWS)
    val_starts = val_starts[:n_val]
    calib = None
    if not args.no_calibrate:
        n_cal = LM_CALIB_WINDOWS if is_rnn else LM_TRANSFORMER_CALIB_WINDOWS
        pick = np.random.default_rng(0).choice(len(train_starts), size=n_cal, replace=False)
        calib = windows(data, train_starts[pick], model.context)
    try:
        if is_rnn:
            qmodel = quantize_rnn(
                model, table_bits=args.bits, calib_windows=calib, shifts=shifts,
                max_width=args.max_width,
            )  # fmt: skip
            widths = rnn_widths(qmodel, max_width=args.max_width)
        else:
            qmodel = quantize_transformer(
                model, table_bits=args.bits, calib_windows=calib, max_width=args.max_width
            )
            widths = transformer_widths(qmodel, max_width=args.max_width)
    except (QuantizeError, WidthError, IRError) as e:
        raise UserError(str(e)) from None
    # numba kernels: imported when a language model is evaluated (see tests/test_imports.py)
    from spikelut.compiler.train.lm_engine import make_engine

    float_loss = make_engine(model).validate(data, val_starts)
    int_loss = int_val_loss(qmodel, data, val_starts)
    qmodel.meta["quantization"]["evaluation"] = {
        "data": source,
        "split": "validation windows of the training run",
        "n_windows": len(val_starts),
        "float_val_loss": float_loss,
        "int_val_loss": int_loss,
    }
    save_model(qmodel, args.output)
    result = {
        "model": str(args.model),
        "output": str(args.output),
        "arch": "rnn" if is_rnn else "transformer",
        "table_bits": args.bits,
        **qmodel.meta["quantization"]["evaluation"],
        "val_loss_change": int_loss - float_loss,
    }
    if is_rnn:
        layers = []
        for name, w, q in (
            ("cell", widths.cell, qmodel.cell_quant),
            ("unembedder", widths.unembedder, qmodel.unembedder_quant),
        ):
            d = w.to_dict()
            del d["col_lo"], d["col_hi"]
            layers.append({**d, "name": name, "scale_log2": q.out_scale_log2})
        result.update(
            state_width=widths.state_width,
            stream_acc_width=widths.cell_acc_width,
            embedding_memory_bits=qmodel.embedding_memory_bits,
            layers=layers,
            table_memory_bits=sum(w["table_memory_bits"] for w in layers),
        )
    else:
        u = widths.unembedder.to_dict()
        del u["col_lo"], u["col_hi"]
        result.update(
            state_width=widths.stream_width,
            stream_acc_width=widths.stream_acc_width,
            layer_in_widths=list(widths.layer_in_widths),
            ffn_in_widths=list(widths.ffn_in_widths),
            stream_scale_log2=qmodel.stream_scale_log2,
            embedding_memory_bits=qmodel.embedding.size * qmodel.table_bits,
            layers=[{**u, "name": "unembedder", "scale_log2": qmodel.unemb_scale_log2}],
            table_memory_bits=(qmodel.attn_tables.size + qmodel.ffn_tables.size) * args.bits
            + u["table_memory_bits"],
        )
    output.emit(args, result, _human_lm)
    return 0


def _human_lm(r: dict) -> str:
    rows = [
        (w["name"], w["n_tables"], w["n_c"], w["out_dim"], w["table_bits"], w["in_shift"],
         w["in_width"], w["compare_width"], w["acc_width"], w["out_width"], w["scale_log2"],
         w["table_memory_bits"])
        for w in r["layers"]
    ]  # fmt: skip
    headers = ("lut", "N_T", "N_C", "Y", "bits", "in_shift", "in_w", "cmp_w", "acc_w", "out_w",
               "scale_log2", "table_mem_bits")  # fmt: skip
    lines = [output.table(rows, headers)]
    if r["arch"] == "transformer":
        lines.append(
            f"residual stream: scale 2**{r['stream_scale_log2']}, layer inputs "
            f"{r['layer_in_widths']} bits, FFN inputs {r['ffn_in_widths']} bits"
        )
    lines += [
        f"state/stream {r['state_width']} bits (accumulator {r['stream_acc_width']} bits); "
        f"embedding memory {r['embedding_memory_bits']} bits, table memory "
        f"{r['table_memory_bits']} bits",
        f"{r['data']} ({r['n_windows']} validation windows): loss float "
        f"{r['float_val_loss']:.4f} nats, integer {r['int_val_loss']:.4f} "
        f"({r['val_loss_change']:+.4f})",
        f"wrote {r['output']}",
    ]
    return "\n".join(lines)


def _lm_split(
    args: argparse.Namespace, model: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The text, the training run's validation starts, the other (training) starts, its name
    (:func:`~spikelut.compiler.frontend.text.training_split`)."""
    if not args.data:
        raise UserError("give the language model's training text with --data FILE (.txt or .gz)")
    data = load_text(args.data)
    training = (model.meta or {}).get("training") or {}
    if training.get("text") and training["text"] != text_fingerprint(data):
        raise UserError(f"{args.data} is not the text {args.model} was trained on; give that text")
    val_starts, train_starts = training_split(model, data)
    return data, val_starts, train_starts, Path(args.data).name
