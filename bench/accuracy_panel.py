"""Accuracy over a panel of data sets: native LUT, converted LUT, MLP, logistic regression.

For every panel set (the fixed 75/25 stratified split of ``compiler.frontend.datasets``) and
seed, this trains

- an MLP (scikit-learn ``MLPClassifier`` with one hidden layer of 64 ReLU units behind a
  ``StandardScaler``), exported with skl2onnx and read back through ONNX;
- a PyTorch MLP of the same shape (standardisation as an eval-mode ``BatchNorm1d``), Adam,
  exported with ``torch.onnx.export`` (the dynamo exporter) and read back through ONNX;
- logistic regression (scikit-learn, standardised);
- the native LUT classifier by the recipe (:func:`spikelut.compiler.passes.recipes.fit_classifier`);
- the LUT network converted from each MLP by the recipe
  (:func:`spikelut.compiler.passes.recipes.convert_auto`, 4-bit tables),

and reports test accuracy as floats and as integers (LUT networks: the golden model at 8-bit
tables for native, 4-bit for converted; MLP and logistic regression: the 8-bit MAC baseline
of ``compiler.passes.quantize_mac``), mean and worst over the seeds, plus the converted
networks' agreement with their MLP on the recipe's held-out split. Only the training split
is used for every choice.

Usage::

    python bench/accuracy_panel.py --quick          # 3 small sets, 1 seed (a few minutes)
    python bench/accuracy_panel.py                  # the whole panel, 3 seeds (long)
    python bench/accuracy_panel.py --sets iris,wine --seeds 2 --json out.json

The markdown table goes to stdout; ``--json`` also writes every figure per seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from spikelut.compiler.frontend.ann import DenseLayer, DenseNet, load_ann
from spikelut.compiler.frontend.datasets import Dataset, load_dataset
from spikelut.compiler.frontend.encoding import choose_encoding
from spikelut.compiler.ir.mac import mac_predict
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.passes.quantize_mac import quantize_mac
from spikelut.compiler.passes.recipes import convert_auto, fit_classifier

HIDDEN = 64

# name -> (n_samples, n_features, n_classes, informative fraction) for make_classification
SYNTHETIC = {
    "syn-300x4-2c": (300, 4, 2, 1.0),
    "syn-1200x20-4c": (1200, 20, 4, 0.4),
    "syn-3000x50-10c": (3000, 50, 10, 0.3),
    "syn-5000x10-3c": (5000, 10, 3, 0.8),
    "syn-2000x400-3c": (2000, 400, 3, 0.05),
    "syn-20000x100-5c": (20000, 100, 5, 0.2),
}
PANEL = ["digits", "iris", "wine", "breast_cancer", "syn-300x4-2c", "syn-1200x20-4c",
         "syn-5000x10-3c", "syn-3000x50-10c", "digits-784", "syn-2000x400-3c",
         "syn-20000x100-5c"]  # fmt: skip
QUICK = ["iris", "wine", "syn-300x4-2c"]


def panel_set(name: str) -> Dataset:
    """A panel set on the fixed split: a scikit-learn set, ``digits-784`` (the digits
    upsampled to 28 x 28 = 784 inputs, bilinear) or a ``make_classification`` set."""
    if name == "digits-784":
        from scipy.ndimage import zoom
        from sklearn.datasets import load_digits

        d = load_digits()
        X = np.stack([zoom(img, 3.5, order=1) for img in d.images]).reshape(len(d.images), -1)
        return load_dataset((np.clip(np.rint(X), 0, 16), d.target))
    if name in SYNTHETIC:
        from sklearn.datasets import make_classification

        n, d, k, frac = SYNTHETIC[name]
        inf = max(2, round(d * frac))
        while k * 2 > 2**inf:
            inf += 1
        X, y = make_classification(
            n, d, n_informative=inf, n_redundant=min(d - inf, inf // 2), n_classes=k,
            n_clusters_per_class=2 if 2 * k <= 2**inf else 1, class_sep=1.0, random_state=0,
        )  # fmt: skip
        # features of different units and offsets, as real tabular data has
        rng = np.random.default_rng(1)
        X = X * rng.lognormal(0, 2, size=d) + rng.normal(0, 50, size=d)
        return load_dataset((X, y))
    return load_dataset(name)


# -- the models -----------------------------------------------------------------------------


def sklearn_mlp(ds: Dataset, seed: int, path: Path):
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = make_pipeline(
        StandardScaler(),
        MLPClassifier((HIDDEN,), max_iter=400, early_stopping=len(ds.y_train) > 2000,
                      random_state=seed),
    )  # fmt: skip
    mlp.fit(ds.X_train, ds.y_train)
    path.write_bytes(to_onnx(mlp, ds.X_train[:1].astype(np.float32)).SerializeToString())
    return load_ann(path)


def torch_mlp(ds: Dataset, seed: int, path: Path):
    import contextlib
    import io

    import torch

    torch.manual_seed(seed)
    d, k = ds.n_features, ds.n_classes
    norm = torch.nn.BatchNorm1d(d, affine=False)
    with torch.no_grad():
        norm.running_mean.copy_(torch.tensor(ds.X_train.mean(0)))
        norm.running_var.copy_(torch.tensor(ds.X_train.var(0) + 1e-12))
    model = torch.nn.Sequential(
        norm, torch.nn.Linear(d, HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(0.1),
        torch.nn.Linear(HIDDEN, k),
    )  # fmt: skip
    X = torch.tensor(ds.X_train, dtype=torch.float32)
    y = torch.tensor(ds.y_train)
    opt = torch.optim.Adam(model[1:].parameters(), lr=1e-3, weight_decay=1e-4)
    batch = max(32, len(X) // 50)
    epochs = int(np.clip(3000 // -(-len(X) // batch), 40, 400))  # at least ~3,000 steps
    model.train()
    norm.eval()  # the fixed standardisation
    for _ in range(epochs):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    logging.getLogger("torch").setLevel(logging.ERROR)
    batch_dim = torch.export.Dim("batch")
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
        torch.onnx.export(model, (X[:2],), path, dynamic_shapes=({0: batch_dim},))
    return load_ann(path)


def logistic(ds: Dataset) -> DenseNet:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(ds.X_train)
    lr = LogisticRegression(max_iter=3000).fit(sc.transform(ds.X_train), ds.y_train)
    W = lr.coef_.T / sc.scale_[:, None]
    b = lr.intercept_ - sc.mean_ @ W
    if W.shape[1] == 1:  # binary: one logit z becomes (-z/2, z/2)
        W, b = np.hstack([-W / 2, W / 2]), np.concatenate([-b / 2, b / 2])
    return DenseNet([DenseLayer(W, b, "identity")], output="softmax", source={"format": "lr"})


def dense_figures(net: DenseNet, ds: Dataset) -> dict:
    """Float accuracy, and the 8-bit MAC baseline's integer accuracy."""
    enc = choose_encoding(ds.X_train)
    mac = quantize_mac(net, enc, ds.X_train)
    return {
        "float": float(np.mean(net.predict(ds.X_test) == ds.y_test)),
        "int": float(np.mean(mac_predict(mac, ds.X_test) == ds.y_test)),
    }


def lut_figures(model, ds: Dataset, bits: int, ann: DenseNet | None = None) -> dict:
    q = quantize_classifier(model, table_bits=bits, calib_raw=ds.X_train)
    pred = int_predict(q, ds.X_test)
    r = {
        "float": float(np.mean(model.float_predict(ds.X_test) == ds.y_test)),
        "int": float(np.mean(pred == ds.y_test)),
        "table_bits": bits,
        "shape": [(layer.n_tables, layer.n_c) for layer in model.layers],
        "constants": int(model.encoding.constants.size),
    }
    if ann is not None:
        conv = model.meta["conversion"]
        r["heldout_agreement"] = conv["heldout_agreement"]["int"]
        r["test_agreement"] = float(np.mean(pred == ann.predict(ds.X_test)))
        r["chosen"] = conv["selection"]["chosen"]
    else:
        r["chosen"] = model.meta["selection"]["chosen"]
    return r


def run_set(name: str, seed: int, tmp: Path) -> dict:
    ds = panel_set(name)
    out: dict = {"set": name, "seed": seed, "n": len(ds.y_train) + len(ds.y_test),
                 "d": ds.n_features, "k": ds.n_classes}  # fmt: skip
    t = time.perf_counter()
    sk = sklearn_mlp(ds, seed, tmp / f"{name}-{seed}-sk.onnx")
    out["mlp"] = dense_figures(sk, ds)
    th = torch_mlp(ds, seed, tmp / f"{name}-{seed}-torch.onnx")
    out["torch_mlp"] = dense_figures(th, ds)
    out["lr"] = dense_figures(logistic(ds), ds)
    out["native"] = lut_figures(fit_classifier(ds.X_train, ds.y_train, seed=seed), ds, 8)
    for key, ann in (("conv_sklearn", sk), ("conv_torch", th)):
        model = convert_auto(ann, ds.X_train, ds.y_train, settings=None)
        out[key] = lut_figures(model, ds, 4, ann)
    out["seconds"] = round(time.perf_counter() - t, 1)
    return out


# -- the table ------------------------------------------------------------------------------

METHODS = [("mlp", "MLP (sklearn)"), ("torch_mlp", "MLP (PyTorch)"), ("lr", "logistic reg."),
           ("native", "native LUT"), ("conv_sklearn", "LUT from sklearn MLP"),
           ("conv_torch", "LUT from PyTorch MLP")]  # fmt: skip


def summarise(rows: list[dict]) -> list[dict]:
    """Per set: mean and worst (over seeds) of every figure, and the targets' gaps."""
    out = []
    for name in dict.fromkeys(r["set"] for r in rows):
        rs = [r for r in rows if r["set"] == name]
        s = {"set": name, "n": rs[0]["n"], "d": rs[0]["d"], "k": rs[0]["k"], "seeds": len(rs)}
        for key, _ in METHODS:
            for kind in ("float", "int"):
                v = np.array([r[key][kind] for r in rs])
                s[f"{key}_{kind}"] = (float(v.mean()), float(v.min()))
        for conv, src in (("conv_sklearn", "mlp"), ("conv_torch", "torch_mlp")):
            gaps = np.array([r[src]["float"] - r[conv]["int"] for r in rs])
            s[f"{conv}_gap"] = (float(gaps.mean()), float(gaps.max()))
            s[f"{conv}_heldout"] = float(np.mean([r[conv]["heldout_agreement"] for r in rs]))
        best = np.array([max(r["mlp"]["float"], r["lr"]["float"]) - r["native"]["int"] for r in rs])
        s["native_gap"] = (float(best.mean()), float(best.max()))
        out.append(s)
    return out


def _pct(v: tuple[float, float]) -> str:
    return f"{100 * v[0]:.1f} ({100 * v[1]:.1f})"


def markdown(summary: list[dict]) -> str:
    head = ["set (n × D, K)"] + [label for _, label in METHODS] + [
        "gap: sklearn conv", "gap: torch conv", "gap: native"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for s in summary:
        seeds = "" if s["seeds"] == 3 else f"; {s['seeds']} seed{'s' * (s['seeds'] > 1)}"
        cells = [f"{s['set']} ({s['n']} × {s['d']}, {s['k']}{seeds})"]
        for key, _ in METHODS:
            cells.append(f"{_pct(s[key + '_float'])} / {_pct(s[key + '_int'])}")
        for key in ("conv_sklearn_gap", "conv_torch_gap", "native_gap"):
            mean, worst = s[key]
            cells.append(f"{100 * mean:+.1f} ({100 * worst:+.1f})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"sets {', '.join(QUICK)}, one seed")
    p.add_argument("--sets", help="comma-separated panel sets (default: all)")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; quick 1)")
    p.add_argument("--json", metavar="FILE", help="write every figure per seed (and resume)")
    args = p.parse_args(argv)
    sets = args.sets.split(",") if args.sets else (QUICK if args.quick else PANEL)
    seeds = args.seeds or (1 if args.quick else 3)
    warnings.filterwarnings("ignore")
    rows: list[dict] = []
    if args.json and Path(args.json).is_file():
        rows = [r for r in json.loads(Path(args.json).read_text()) if r["set"] in sets]
    done = {(r["set"], r["seed"]) for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sets:
            for seed in range(seeds):
                if (name, seed) in done:
                    continue
                r = run_set(name, seed, Path(tmp))
                rows.append(r)
                print(f"{name} seed {seed}: " + ", ".join(
                    f"{k} {100 * r[k]['float']:.1f}/{100 * r[k]['int']:.1f}" for k, _ in METHODS
                ) + f" ({r['seconds']} s)", file=sys.stderr, flush=True)  # fmt: skip
                if args.json:
                    Path(args.json).write_text(json.dumps(rows, indent=1))
    rows = [r for r in rows if r["seed"] < seeds]
    print("Test accuracy %, float / integer, each as mean (worst) over seeds "
          f"{', '.join(str(s) for s in range(seeds))} (fewer where said); gaps in points: source MLP float minus "
          "converted integer, and the better of MLP and logistic regression minus native "
          "integer, mean (worst seed).\n")  # fmt: skip
    print(markdown(summarise(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
