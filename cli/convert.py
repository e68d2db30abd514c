"""``spikelut convert``: a trained ANN (ONNX or scikit-learn) to a float LUT classifier.

Trains the LUT network on the transfer data (``--data``: the training split of a data set;
``--calib``: a file of inputs, labels optional), writes it atomically, quantises a copy to
integers for the figures, and prints: ANN, float and integer accuracy, agreement with the
ANN's predictions, table memory, and operations per inference against the ANN's
multiply-accumulates.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from spikelut.cli import output
from spikelut.cli.common import (
    TRUST_PICKLE_HELP,
    check_outputs,
    load_ann_file,
    non_negative_int,
    positive_float,
    seed_int,
)
from spikelut.compiler.analysis.conversion import conversion_report
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.datasets import load_dataset, real_features
from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.ir.modelfile import save_model
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.passes.recipes import convert_auto
from spikelut.compiler.passes.scales import QuantizeError
from spikelut.compiler.passes.widths import WidthError
from spikelut.compiler.train.convert import (
    INT_TABLE_BITS,
    ConvertError,
    ConvertSettings,
    convert_ann,
)


def add_parser(sub: Any) -> None:
    """Register the ``convert`` subcommand."""
    p = sub.add_parser(
        "convert",
        help="convert a trained ANN (ONNX, scikit-learn MLPClassifier) into a LUT network",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "ann",
        metavar="ANN",
        help=".onnx file, or a pickled/joblib scikit-learn MLPClassifier (.pkl, .joblib; "
        "with --trust-pickle only: pickles run code when loaded)",
    )
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="float .lutnet out")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--data",
        metavar="NAME|FILE",
        help="data set (digits, iris, wine, breast_cancer, .npz, .csv): convert on its "
        "training split, report on its test split",
    )
    src.add_argument(
        "--calib",
        metavar="FILE",
        help="transfer inputs: .npy (features) or .npz (X, optional y); figures are then "
        "measured on these same inputs",
    )
    p.add_argument(
        "--anchors",
        choices=("weights", "random"),
        default=ConvertSettings.anchors,
        help=f"anchor pairs from the ANN's weights or random (default {ConvertSettings.anchors})",
    )
    p.add_argument(
        "--anchor-power",
        type=positive_float,
        default=ConvertSettings.anchor_power,
        metavar="P",
        help="weight anchors: draw inputs by their contribution to the power P (higher: fewer, "
        f"stronger inputs; default {ConvertSettings.anchor_power:g})",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--n-tables", type=_ints, metavar="N[,N...]", help="tables per layer (default: by shape)"
    )
    p.add_argument("--n-c", type=_ints, metavar="N[,N...]", help="index bits per table per layer")
    p.add_argument(
        "--epochs",
        type=non_negative_int,
        default=ConvertSettings.finetune_epochs,
        metavar="E",
        help=f"end-to-end fine-tuning epochs (default {ConvertSettings.finetune_epochs})",
    )
    p.add_argument(
        "--augment",
        type=non_negative_int,
        default=ConvertSettings.augment,
        metavar="K",
        help=f"extra ANN-labelled transfer inputs per sample (default {ConvertSettings.augment})",
    )
    p.add_argument(
        "--input-gain",
        type=positive_float,
        default=1.0,
        metavar="G",
        help="the ANN was trained on features times G (e.g. 0.0625 for digits / 16)",
    )
    p.add_argument(
        "--bits",
        type=int,
        default=INT_TABLE_BITS,
        metavar="N",
        help=f"table bits of the integer model (figures, --int-output; default {INT_TABLE_BITS})",
    )
    p.add_argument("--int-output", metavar="MODEL_INT", help="also write the integer model")
    p.add_argument(
        "--recipe",
        choices=("auto", "fixed"),
        default="auto",
        help="auto (default): hold out 20%% of the conversion data, try constant inputs and "
        "anchor choices, keep the one whose integer network agrees most with the ANN there "
        "(reported); fixed: convert once with the settings given",
    )
    output.add_json_flag(p)
    p.set_defaults(func=run)


def _ints(text: str) -> tuple[int, ...] | int:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give integers separated by commas") from None
    return values[0] if len(values) == 1 else values


def load_calib(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Features (and labels, when present) from a ``.npy`` or ``.npz`` file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"calibration file {path!r} not found; check the path")
    try:
        if p.suffix.lower() == ".npy":
            return real_features(np.load(p, allow_pickle=False), what=path), None
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as data:
                if "X" not in data.files:
                    raise UserError(f"{path}: no array X; save it with np.savez(path, X=...)")
                y = _calib_labels(data["y"], path) if "y" in data.files else None
                return real_features(data["X"], what=path), y
    except UserError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{path}: not a readable numpy file ({e})") from None
    raise UserError(f"{path}: calibration data must be a .npy or .npz file")


def _calib_labels(y: np.ndarray, path: str) -> np.ndarray:
    """Class indices from an .npz file's ``y``: whole numbers >= 0, or UserError."""
    whole = y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    if not (y.dtype.kind in "biu" or whole):
        raise UserError(f"{path}: labels y must be class indices 0, 1, ..., not {y.dtype} values")
    labels = y.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise UserError(f"{path}: labels y must be class indices 0, 1, ..., not {labels.min()}")
    return labels


def run(args: argparse.Namespace) -> int:
    """Convert, write, quantise a copy, report."""
    check_outputs(
        [args.ann, args.data, args.calib], {"-o": args.output, "--int-output": args.int_output}
    )
    ann = load_ann_file(args.ann, args.trust_pickle)
    if args.input_gain != 1.0:
        if not args.input_gain > 0:
            raise UserError(f"--input-gain must be positive, not {args.input_gain!r}")
        first = ann.layers[0]
        ann.layers[0] = first._replace(W=first.W * args.input_gain)
        ann.source["input_gain"] = args.input_gain
    class_names = None
    if args.data:
        ds = load_dataset(args.data)
        X_fit, y_fit, X_eval, y_eval = ds.X_train, ds.y_train, ds.X_test, ds.y_test
        class_names, data_name, split = ds.class_names, ds.name, "test"
    else:
        X_fit, y_fit = load_calib(args.calib)
        X_eval, y_eval = X_fit, y_fit
        data_name, split = Path(args.calib).name, "calibration (not held out)"
    if X_fit.ndim != 2 or X_fit.shape[1] != ann.in_dim:
        raise UserError(
            f"the ANN reads {ann.in_dim} features but the data has shape {X_fit.shape}; "
            "give the data the ANN was trained on"
        )
    if class_names is not None and len(class_names) != ann.n_outputs:
        raise UserError(f"the ANN has {ann.n_outputs} outputs but {data_name} has "
                        f"{len(class_names)} classes")  # fmt: skip
    settings = ConvertSettings(
        n_tables=args.n_tables,
        n_c=args.n_c,
        anchors=args.anchors,
        anchor_power=args.anchor_power,
        finetune_epochs=args.epochs,
        augment=args.augment,
        seed=args.seed,
    )
    try:
        if args.recipe == "auto":  # choices measured on a held-out part of X_fit
            model = convert_auto(ann, X_fit, y_fit, settings=settings, table_bits=args.bits,
                                 class_names=class_names)  # fmt: skip
        else:
            model = convert_ann(ann, X_fit, y_fit, settings=settings, class_names=class_names)
    except (ConvertError, IRError) as e:
        raise UserError(str(e)) from None
    except ValueError as e:  # numpy's, for sizes no array can have
        raise UserError(
            f"cannot convert with these options ({e}); choose smaller --n-tables or --augment"
        ) from None
    model.meta["conversion"]["data"] = data_name
    model.meta["dataset"] = data_name if args.data else None
    int_model = _quantize(model, X_fit, args.bits)
    report = conversion_report(ann, model, X_eval, y_eval, int_model=int_model)
    model.meta["conversion"]["evaluation"] = {
        k: report[k]
        for k in ("n", "ann_accuracy", "float_accuracy", "float_agreement", "int_accuracy")
    } | {"split": split, "int_agreement": report["int_agreement"], "int_bits": args.bits}
    save_model(model, args.output)
    if args.int_output and int_model is not None:
        save_model(int_model, args.int_output)
    result = {
        "ann": str(args.ann),
        "output": str(args.output),
        "int_output": args.int_output if int_model is not None else None,
        "data": data_name,
        "split": split,
        "source": model.meta["conversion"]["source"],
        "settings": model.meta["conversion"]["settings"],
        "heldout_agreement": model.meta["conversion"].get("heldout_agreement"),
        **report,
    }
    output.emit(args, result, _human)
    return 0


def _quantize(model: Any, X_calib: np.ndarray, bits: int) -> Any:
    """The integer copy for the figures (``spikelut.compiler.passes.quantize_classifier``); None if it fails."""
    try:
        return quantize_classifier(model, table_bits=bits, calib_raw=X_calib)
    except (QuantizeError, WidthError, IRError) as e:
        raise UserError(f"quantising the converted network failed: {e}") from None


def _heldout_line(h: dict | None) -> list[str]:
    if not h:
        return []
    return [f"agreement with the ANN on the held-out {h['n']} samples of the conversion data: "
            f"{_pct(h['int'])} as {h['table_bits']}-bit integers (the figure to trust)"]  # fmt: skip


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _human(r: dict) -> str:
    lut, ann = r["lut_ops"], r["ann_ops"]
    bits = r["table_bits"][0]
    rows = [
        ("accuracy (LUT float | ANN)", _pct(r["float_accuracy"]), _pct(r["ann_accuracy"])),
        (f"accuracy (LUT {bits}-bit integer | ANN)", _pct(r["int_accuracy"]),
         _pct(r["ann_accuracy"])),
        ("agreement with the ANN (float)", _pct(r["float_agreement"]), "-"),
        ("agreement with the ANN (integer)", _pct(r["int_agreement"]), "-"),
        (f"memory bits ({bits}-bit tables | 8-bit weights)", r["table_memory_bits"],
         r["ann_weight_bits"]),
        ("memory bits read per inference", r["table_bits_read"], r["ann_bits_read"]),
        ("multiplications per inference", 0, ann["multiply_accumulates"]),
        ("additions per inference", lut["additions"],
         ann["additions"]),
        ("comparisons per inference", lut["comparisons"], ann["comparisons"]),
        ("table rows read per inference", lut["table_rows_read"], "-"),
    ]  # fmt: skip
    shape = ", ".join(f"{x['in']}->{x['out']} ({x['n_tables']}x{x['n_c']})" for x in r["layers"])
    lines = [
        f"converted {r['ann']} ({r['source'].get('format')}) -> {r['output']}",
        f"LUT layers (N_T x N_C): {shape}; anchors {r['settings']['anchors']}, "
        f"seed {r['settings']['seed']}",
        *_heldout_line(r.get("heldout_agreement")),
        f"figures on {r['data']}, {r['split']} ({r['n']} samples):",
        output.table(rows, ("figure", "LUT", "ANN")),
    ]
    return "\n".join(lines)
