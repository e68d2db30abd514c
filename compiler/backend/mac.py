"""The multiply-accumulate baseline backend: a float ANN to the Verilog/RTLIL of a MAC core.

:func:`compile_mac` quantises a dense ReLU network to 8-bit weights with
:func:`spikelut.compiler.passes.quantize_mac.quantize_mac` (calibrated on the data set's
training split), builds :class:`spikelut.hdl.mac.MACCore` with ``M`` multiply-accumulate
units and writes ``core.v``, ``core.il`` and ``manifest.json`` (ports, cycles per inference,
memory bits read, operations per inference) like the LUT compile.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from amaranth.back import rtlil, verilog

from spikelut.compiler.backend.compile import CORE_NAME
from spikelut.compiler.backend.manifest import component_ports
from spikelut.compiler.backend.targets import TARGETS, Target
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.frontend.ann import ANNError, DenseNet, from_sklearn, load_ann
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.frontend.encoding import choose_encoding
from spikelut.compiler.ir.mac import MACNetwork, mac_predict
from spikelut.compiler.ir.operations import dense_operations
from spikelut.compiler.passes.quantize_mac import quantize_mac
from spikelut.hdl.mac import MACCore, MACParams

__all__ = ["compile_mac", "default_macs", "mac_figures", "mac_params", "quantize_for"]


def default_macs(net: MACNetwork, target: Target) -> int:
    """Units for ``target``: one per DSP block, at most the widest layer's outputs (1 on a
    device without DSPs, where multipliers cost logic)."""
    widest = max(layer.w.shape[1] for layer in net.layers)
    return max(1, min(widest, target.dsps))


def mac_params(net: MACNetwork, *, macs: int = 1) -> MACParams:
    """The checked :class:`~spikelut.hdl.mac.MACParams` of ``net`` on ``macs`` units
    (``ValueError`` for a unit count the network cannot use)."""
    return MACParams(
        weights=[layer.w for layer in net.layers],
        biases=[layer.b for layer in net.layers],
        shifts=[layer.shift for layer in net.layers[:-1]],
        in_width=net.encoding.bits,
        weight_bits=net.layers[0].weight_bits,
        act_bits=net.layers[0].act_bits,
        macs=macs,
    )


def mac_figures(params: MACParams) -> dict:
    """Per-inference figures of a MAC core: cycles, memory bits read (weights with their
    zero padding, and biases), the network's operations
    (:func:`~spikelut.compiler.ir.operations.dense_operations`), the multiplies the units
    perform, the accumulator widths."""
    shapes = [(layer.in_dim, layer.out_dim) for layer in params.layers]
    ops = dense_operations(shapes, weight_bits=params.weight_bits)
    return {
        "macs": params.macs,
        "cycles_per_inference": params.cycles_per_inference,
        "weight_bits_read": params.weight_bits_read,
        "memory_bits": params.memory_bits,
        "multiplications": ops["multiplications"],
        "additions": ops["additions"],
        "unit_multiplies": params.unit_multiplies,
        "comparisons": ops["comparisons"],
        "acc_widths": params.acc_widths,
        "logit_width": params.logit_width,
        "layers": [
            {"in": layer.in_dim, "out": layer.out_dim, "groups": layer.groups}
            for layer in params.layers
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
    target: Target = TARGETS["ice40-up5k"],
    macs: int | None = None,
) -> dict:
    """Compile an ANN (a :class:`DenseNet`, a fitted sklearn ``MLPClassifier`` or a file
    :func:`~spikelut.compiler.frontend.ann.load_ann` reads) to the MAC baseline core in ``out_dir``.

    ``data`` calibrates the quantisation (and gives the test accuracy in the manifest);
    ``macs``: units (default :func:`default_macs` of ``target``). Returns the manifest.
    Raises ValueError (or :class:`~spikelut.compiler.frontend.ann.ANNError`) for bad input.
    """
    t0 = time.perf_counter()
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
    params = mac_params(net, macs=macs)
    core = MACCore(params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {"ports": component_ports(core)}
    write_text_atomic(out / "core.v", verilog.convert(core, name=CORE_NAME, platform=target))
    write_text_atomic(out / "core.il", rtlil.convert(core, name=CORE_NAME, platform=target))
    pred = mac_predict(net, dataset.X_test)
    result.update(mac_figures(params))
    result.update(
        baseline="mac",
        target=target.name,
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
