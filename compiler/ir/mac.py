"""The integer multiply-accumulate (MAC) baseline network and its reference semantics.

Semantics, per dense layer ``k`` (all integers, int64 here, exact):

- ``acc = x @ w + b``: ``w`` signed ``weight_bits``-wide (8 by default), ``b`` at the
  accumulator's scale, ``x`` the layer's integer input (layer 0: the encoded features).
- hidden layers: ReLU, then requantise by an arithmetic right shift and saturate to the
  unsigned ``act_bits`` range: ``x_next = min(max(acc, 0) >> shift, 2**act_bits - 1)``.
- the last layer: no activation; the prediction is the argmax of ``acc``, ties to the lowest
  index (as in the LUT network).

:func:`spikelut.compiler.passes.quantize_mac.quantize_mac` builds such a network from a float :class:`~spikelut.compiler.frontend.ann.DenseNet`:
per layer one power-of-two weight scale (the largest that clips no weight), biases rounded at
the accumulator scale, and each hidden layer's shift chosen on calibration data so that its
largest calibration activation just fits ``act_bits``. The input is the integer encoding of an
:class:`~spikelut.compiler.ir.classifier.InputEncoding` (digits pixels 0..16 stay as they are); its scale
and offset are folded into layer 0. :attr:`MACLayer.acc_bounds` gives exact accumulator ranges
for the hardware's widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikelut.compiler.ir.classifier import InputEncoding


@dataclass(frozen=True, eq=False)
class MACLayer:
    """One integer dense layer: ``w`` (in, out) and ``b`` (out,) int64; ``relu`` and
    ``shift`` apply to hidden layers (``act_bits`` saturation); ``in_lo``/``in_hi`` bound
    the layer's input values."""

    w: np.ndarray
    b: np.ndarray
    relu: bool
    shift: int
    weight_bits: int
    act_bits: int
    in_lo: int
    in_hi: int

    @property
    def acc_bounds(self) -> tuple[int, int]:
        """Exact ``(min, max)`` of the accumulator over all inputs in ``in_lo..in_hi``."""
        w = self.w.astype(np.int64)
        hi = np.where(w > 0, w * self.in_hi, w * self.in_lo).sum(axis=0) + self.b
        lo = np.where(w > 0, w * self.in_lo, w * self.in_hi).sum(axis=0) + self.b
        return int(lo.min()), int(hi.max())

    @property
    def acc_bits(self) -> int:
        """Signed width that holds every accumulator value."""
        lo, hi = self.acc_bounds
        return max(_signed_bits(lo), _signed_bits(hi))


def _signed_bits(v: int) -> int:
    return (v.bit_length() if v >= 0 else (-v - 1).bit_length()) + 1


@dataclass(eq=False)
class MACNetwork:
    """The integer MAC classifier: an input encoding and a chain of :class:`MACLayer`."""

    encoding: InputEncoding
    layers: list[MACLayer]

    @property
    def weight_memory_bits(self) -> int:
        """Weight bits plus bias bits (biases at their accumulator width)."""
        return sum(
            layer.w.size * layer.weight_bits + layer.b.size * layer.acc_bits
            for layer in self.layers
        )


@dataclass
class MACTrace:
    """``accumulators[k]`` (B, out) and ``outputs[k]`` (B, out) of every layer; ``predictions``."""

    inputs: np.ndarray
    accumulators: list[np.ndarray]
    outputs: list[np.ndarray]
    predictions: np.ndarray


def run_mac(net: MACNetwork, x_int: np.ndarray) -> MACTrace:
    """Run the integer MAC network on integer inputs (B, in_dim)."""
    x = np.atleast_2d(np.asarray(x_int, np.int64))
    inputs, accs, outs = x, [], []
    for layer in net.layers:
        acc = x @ layer.w + layer.b
        if layer.relu:
            x = np.minimum(np.maximum(acc, 0) >> layer.shift, (1 << layer.act_bits) - 1)
        else:
            x = acc
        accs.append(acc)
        outs.append(x)
    return MACTrace(inputs, accs, outs, np.argmax(x, axis=-1))


def mac_predict(net: MACNetwork, raw: np.ndarray) -> np.ndarray:
    """Predictions for raw features (B, in_dim)."""
    return run_mac(net, net.encoding.encode_int(np.atleast_2d(raw))).predictions
