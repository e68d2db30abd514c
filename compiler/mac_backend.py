"""The multiply-accumulate baseline backend: a float ANN to the Verilog/RTLIL of a MAC core.

:func:`compile_mac` quantises a dense ReLU network to 8-bit weights with
:func:`spikelut.sim.mac_golden.quantize_mac` (calibrated on the data set's training split),
builds :class:`spikelut.hdl.mac.MACCore` with ``M`` multiply-accumulate units and writes
``core.v``, ``core.il`` and ``manifest.json`` (ports, cycles per inference, memory bits read,
multiplications and additions per inference) like the LUT compile.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from amaranth.back import rtlil, verilog

from spikelut.hdl.mac import MACCore
from spikelut.hdl.params import discard
from spikelut.sim.mac_golden import MACNetwork, quantize_mac

from .ann import ANNError, DenseNet, from_sklearn, load_ann
from .backend import _ports
from .datasets import load_dataset
from .fileio import write_text_atomic
from .train_classifier import choose_encoding

__all__ = [
    "DSPS",
    "compile_mac",
    "core_figures",
    "default_macs",
    "mac_core",
    "mac_figures",
    "quantize_for",
]

# DSP blocks (multipliers) of each compile target
DSPS = {"ice40-up5k": 8, "ice40-hx8k": 0, "ecp5-25": 28, "ecp5-85": 156}


def default_macs(net: MACNetwork, target: str) -> int:
    """Units for ``target``: one per DSP block, at most the widest layer's outputs (1 on a
    device without DSPs, where multipliers cost logic)."""
    widest = max(layer.w.shape[1] for layer in net.layers)
    return max(1, min(widest, DSPS[target]))


def mac_core(net: MACNetwork, *, macs: int = 1) -> MACCore:
    """The :class:`~spikelut.hdl.mac.MACCore` computing ``net`` with ``macs`` units."""
    return MACCore(
        weights=[layer.w for layer in net.layers],
        biases=[layer.b for layer in net.layers],
        shifts=[layer.shift for layer in net.layers[:-1]],
        in_width=net.encoding.bits,
        weight_bits=net.layers[0].weight_bits,
        act_bits=net.layers[0].act_bits,
        macs=macs,
    )


def mac_figures(net: MACNetwork, *, macs: int = 1) -> dict:
    """Per-inference figures of ``net``'s core with ``macs`` units: cycles, memory bits read,
    multiplications and additions of the network (zero-padded unit work separately), argmax
    comparisons."""
    core = mac_core(net, macs=macs)
    discard(core)  # built for its figures only
    return core_figures(core)


def core_figures(core: MACCore) -> dict:
    """:func:`mac_figures` of a built core."""
    mults = sum(layer.in_dim * layer.out_dim for layer in core.layers)
    return {
        "macs": core.macs,
        "cycles_per_inference": core.cycles_per_inference,
        "weight_bits_read": core.weight_bits_read,
        "memory_bits": core.memory_bits,
        "multiplications": mults,
        # a group starts from its bias: one addition per product
        "additions": mults,
        "unit_multiplies": core.unit_multiplies,
        "comparisons": core.n_classes - 1,
        "acc_widths": core.acc_widths,
        "logit_width": core.logit_width,
        "layers": [
            {"in": layer.in_dim, "out": layer.out_dim, "groups": layer.groups}
            for layer in core.layers
        ],
    }


def quantize_for(ann: DenseNet, data: str = "digits") -> tuple[MACNetwork, object]:
    """``(MAC network, Dataset)``: ``ann`` quantised with the encoding native training would
    choose for ``data``, calibrated on its training split."""
    dataset = load_dataset(data)
    if dataset.n_features != ann.in_dim:
        raise ValueError(
            f"the ANN reads {ann.in_dim} features but {data!r} has {dataset.n_features}; "
            "pass the data set it was trained on"
        )
    encoding = choose_encoding(dataset.X_train)
    return quantize_mac(ann, encoding, dataset.X_train), dataset


def compile_mac(
    ann_or_path,
    out_dir: str | os.PathLike,
    *,
    data: str = "digits",
    target: str = "ice40-up5k",
    macs: int | None = None,
) -> dict:
    """Compile an ANN (a :class:`DenseNet`, a fitted sklearn ``MLPClassifier`` or a file
    :func:`~spikelut.compiler.ann.load_ann` reads) to the MAC baseline core in ``out_dir``.

    ``data`` calibrates the quantisation (and gives the test accuracy in the manifest);
    ``macs``: units (default :func:`default_macs` of ``target``). Returns the manifest.
    Raises ValueError (or :class:`~spikelut.compiler.ann.ANNError`) for bad input.
    """
    t0 = time.perf_counter()
    if target not in DSPS:
        raise ValueError(f"unknown target {target!r}; use one of {', '.join(sorted(DSPS))}")
    if isinstance(ann_or_path, DenseNet):
        ann = ann_or_path
    elif isinstance(ann_or_path, (str, os.PathLike)):
        ann = load_ann(ann_or_path)
    else:
        try:
            ann = from_sklearn(ann_or_path)
        except ANNError:
            raise ValueError(
                f"cannot compile a {type(ann_or_path).__name__}; pass a DenseNet, an "
                "MLPClassifier or an ANN file"
            ) from None
    net, dataset = quantize_for(ann, data)
    if macs is None:
        macs = default_macs(net, target)
    core = mac_core(net, macs=macs)
    from .cmd_compile import TARGETS, _Device

    platform = _Device(TARGETS[target][1])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {"ports": _ports(core)}
    write_text_atomic(
        out / "core.v", verilog.convert(core, name="spikelut_core", platform=platform)
    )
    core = mac_core(net, macs=macs)  # a component is elaborated once per conversion
    write_text_atomic(out / "core.il", rtlil.convert(core, name="spikelut_core", platform=platform))
    pred = run_predictions(net, dataset.X_test)
    result.update(core_figures(core))
    result.update(
        baseline="mac",
        target=target,
        weight_bits=net.layers[0].weight_bits,
        act_bits=net.layers[0].act_bits,
        shifts=[layer.shift for layer in net.layers[:-1]],
        data=data,
        test_accuracy=float(np.mean(pred == dataset.y_test)),
        ann_test_accuracy=float(np.mean(ann.predict(dataset.X_test) == dataset.y_test)),
        compile_seconds=round(time.perf_counter() - t0, 3),
    )
    write_text_atomic(out / "manifest.json", json.dumps(result, indent=1, sort_keys=True))
    return result


def run_predictions(net: MACNetwork, X: np.ndarray) -> np.ndarray:
    """The integer MAC network's predictions for raw features ``X``."""
    from spikelut.sim.mac_golden import mac_predict

    return mac_predict(net, X)
