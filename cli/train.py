"""``spikelut train``: train a network natively with the Manifesto's learning rule.

``spikelut train classifier [--data NAME|FILE] -o MODEL``: a LUT classifier on a
scikit-learn data set (``digits`` by default, ``iris``, ``wine``, ``breast_cancer``), a
``.npz`` file (arrays ``X``, ``y``) or a ``.csv`` file (label in the last column), on the
fixed split of :mod:`spikelut.compiler.frontend.datasets`. Progress (per epoch: loss, train and test
accuracy) goes to stderr through logging; the final figures go to stdout (``--json`` for
one JSON object); the model is written atomically as a ``.lutnet`` file.

The sub-choice after ``train`` is a required positional; each one registers its own parser
(``_add_classifier_parser`` here, :func:`spikelut.cli.train_lm.add_lm_parser` for language
models).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np

from spikelut.cli import output
from spikelut.cli.common import (
    check_outputs,
    non_negative_int,
    positive_float,
    positive_int,
    seed_int,
)
from spikelut.cli.train_lm import add_lm_parser
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.datasets import SKLEARN_DATASETS, load_dataset
from spikelut.compiler.ir.lut import MAX_N_C, IRError
from spikelut.compiler.ir.modelfile import ModelFileError, save_model
from spikelut.compiler.ir.operations import table_memory_bits
from spikelut.compiler.passes.recipes import fit_on_dataset
from spikelut.compiler.train.classifier import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_HIDDEN,
    DEFAULT_LR,
    DEFAULT_N_C,
    DEFAULT_N_TABLES,
    DEFAULT_SEED,
    train_on_dataset,
)

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelut train`` and its sub-choices."""
    parser = sub.add_parser(
        "train",
        help="train a LUT network natively",
        description="Train a LUT network with the Spiking Manifesto's learning rule.",
    )
    what = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    _add_classifier_parser(what)
    add_lm_parser(what)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an integer or a comma-separated list of integers"
        ) from None
    return values


def _add_classifier_parser(what: argparse._SubParsersAction) -> None:
    p = what.add_parser(
        "classifier",
        help="a LUT classifier on a tabular/image data set",
        description=(
            "Train a float LUT classifier. Data: a scikit-learn data set by name "
            f"({', '.join(SKLEARN_DATASETS)}), a .npz file with arrays X and y, or a .csv "
            "file whose last column is the label; split 75/25, stratified, random_state 0."
        ),
    )
    p.add_argument(
        "--data", default="digits", metavar="NAME|FILE", help="data set (default: digits)"
    )
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write")
    p.add_argument(
        "--seed", type=seed_int, default=DEFAULT_SEED, help="random seed (default: %(default)s)"
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=DEFAULT_EPOCHS,
        help="training epochs (default: %(default)s)",
    )
    p.add_argument(
        "--lr",
        type=positive_float,
        default=DEFAULT_LR,
        help="row learning rate per sample, decayed as a cosine over the epochs "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH,
        help="samples per update; a batch reads the tables as they were at its start and "
        "sums its row updates; 1 is the reference's per-sample order (default: %(default)s)",
    )
    p.add_argument(
        "--hidden",
        type=_int_list,
        default=list(DEFAULT_HIDDEN),
        metavar="H[,H...]",
        help="hidden layer width(s); 0 or empty for none (default: none)",
    )
    p.add_argument(
        "--tables",
        type=_int_list,
        default=[DEFAULT_N_TABLES],
        metavar="N[,N...]",
        help=f"tables per layer: one value for all layers or one per layer (default: {DEFAULT_N_TABLES})",
    )
    p.add_argument(
        "--n-c",
        type=_int_list,
        default=[DEFAULT_N_C],
        metavar="C[,C...]",
        help="comparisons (index bits) per table, 1..16: one value or one per layer "
        f"(default: {DEFAULT_N_C})",
    )
    p.add_argument(
        "--in-shift",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="train the first layer on its inputs as the integer network compares them after "
        "an input shift of S bits (x >> S: coarser, cheaper comparators, with ties); "
        "quantize then uses that shift for layer 0 (default: 0, none)",
    )
    output.add_json_flag(p)
    p.add_argument(
        "--auto",
        action="store_true",
        help="the recipe: hold out 20%% of the training split, try shapes sized to the data "
        "(tables, N_C, constant inputs, table dropout) with early stopping there, train the "
        "best on the whole training split; --hidden, --tables, --n-c and --epochs are ignored",
    )
    p.set_defaults(func=run_classifier_training)


def _one_or_per_layer(
    name: str, values: list[int], n_layers: int, hi: int | None = None
) -> int | list[int]:
    """One value for every layer or one per layer, each 1..``hi``; UserError otherwise
    (before any data is read)."""
    bad = [v for v in values if v < 1 or (hi is not None and v > hi)]
    if bad:
        bound = ">= 1" if hi is None else f"1..{hi}"
        raise UserError(f"--{name} values must be {bound}, not {bad[0]}")
    if len(values) == 1:
        return values[0]
    if len(values) != n_layers:
        raise UserError(
            f"--{name} has {len(values)} values for {n_layers} layers; give one value or one per layer"
        )
    return values


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this system
        return None


def _check_table_memory(hidden: list[int], n_tables, n_c) -> None:
    """UserError, before any data is read, when the float tables alone (two outputs in the
    last layer at least) need more memory than the machine has."""
    widths = [*hidden, 2]
    tables = n_tables if isinstance(n_tables, list) else [n_tables] * len(widths)
    bits = n_c if isinstance(n_c, list) else [n_c] * len(widths)
    need = sum(t * (1 << c) * y * 4 for t, c, y in zip(tables, bits, widths, strict=True))
    have = _physical_memory()
    if have is not None and need > have:
        raise UserError(
            f"the tables need at least {need / 2**30:.3g} GiB of memory, this machine has "
            f"{have / 2**30:.3g} GiB; choose fewer --tables, a smaller --n-c or narrower --hidden"
        )


def run_classifier_training(args: argparse.Namespace) -> int:
    """Train, save and report a classifier (``spikelut train classifier``)."""
    hidden = [h for h in args.hidden if h != 0]
    if any(h < 2 for h in hidden):
        raise UserError(f"--hidden widths must be >= 2, not {args.hidden!r}")
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        raise UserError("--epochs and --batch-size must be >= 1 and --lr > 0")
    if args.auto and args.in_shift:
        raise UserError("--in-shift is for a network of the shape you give; drop it or --auto")
    n_layers = len(hidden) + 1
    n_tables = _one_or_per_layer("tables", args.tables, n_layers)
    n_c = _one_or_per_layer("n-c", args.n_c, n_layers, MAX_N_C)
    _check_table_memory(hidden, n_tables, n_c)
    check_outputs([args.data], {"-o": args.output})
    data = load_dataset(args.data)
    log.info(
        "training on %s: %d train / %d test samples, %d features, %d classes",
        data.name,
        len(data.y_train),
        len(data.y_test),
        data.n_features,
        data.n_classes,
    )

    def progress(r: dict) -> None:
        log.info(
            "epoch %d/%d  loss %.4f  train %.2f%%  test %.2f%%",
            r["epoch"],
            r["epochs"],
            r["loss"],
            100 * r["train_accuracy"],
            100 * r["test_accuracy"],
        )

    start = time.perf_counter()
    try:
        if args.auto:  # shape, constant inputs, dropout and epochs chosen on held-out data
            model = fit_on_dataset(data, lr=args.lr, batch_size=args.batch_size,
                                   seed=args.seed, progress=progress)  # fmt: skip
        else:
            model = train_on_dataset(
                data,
                hidden=hidden,
                n_tables=n_tables,
                n_c=n_c,
                epochs=args.epochs,
                lr=args.lr,
                batch_size=args.batch_size,
                seed=args.seed,
                progress=progress,
                in_shift=args.in_shift,
            )
    except (IRError, ValueError) as e:
        raise UserError(f"{e}; change the network options") from None
    if not all(np.all(np.isfinite(layer.tables)) for layer in model.layers):
        raise UserError(
            f"training diverged (tables are not finite at --lr {args.lr:g}); use a smaller --lr"
        )
    seconds = time.perf_counter() - start
    try:
        save_model(model, args.output)
    except (ModelFileError, OSError) as e:
        raise UserError(f"cannot write {args.output}: {e}") from None
    meta = model.meta
    result = {
        "model": str(args.output),
        "dataset": data.name,
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "layers": [
            {"in": layer.in_dim, "out": layer.out_dim, "n_tables": layer.n_tables, "n_c": layer.n_c}
            for layer in model.layers
        ],
        "table_bits_8bit": table_memory_bits(model),
        "epochs": meta["hyperparameters"]["epochs"],
        "seed": args.seed,
        "constant_inputs": int(model.encoding.constants.size),
        "heldout_accuracy": meta.get("selection", {}).get("heldout_accuracy"),
        "loss": meta["loss"],
        "train_accuracy": meta["train_accuracy"],
        "test_accuracy": meta["test_accuracy"],
        "seconds": round(seconds, 2),
    }
    output.emit(args, result, _human)
    return 0


def _human(r: dict) -> str:
    shape = " -> ".join(
        [str(r["layers"][0]["in"])]
        + [f"{lay['out']} ({lay['n_tables']} x N_C {lay['n_c']})" for lay in r["layers"]]
    )
    return "\n".join(
        [
            f"model          {r['model']}",
            f"data           {r['dataset']} ({r['n_train']} train / {r['n_test']} test)",
            f"network        {shape}",
            f"table memory   {r['table_bits_8bit']} bits at 8 bits an entry",
            f"train accuracy {100 * r['train_accuracy']:.2f}%",
            f"test accuracy  {100 * r['test_accuracy']:.2f}%",
            f"time           {r['seconds']} s ({r['epochs']} epochs, seed {r['seed']})",
        ]
    )
