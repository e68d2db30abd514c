"""The multiply-accumulate baseline as a board design (shared by ``spikelut build --baseline
mac`` and ``bench/compare_mac.py``): the identity hash and the board core; the units per
board are :func:`spikelut.compiler.backend.mac.default_macs` of the board's target.

The MAC core's weights are fixed by the bitstream, so the design has no table space to load;
it sits in the same :class:`~spikelut.boards.top.BoardCore` (UART host link, LEDs) as a LUT
network and answers IDENTIFY with :func:`mac_hash` of its integer network.
"""

from __future__ import annotations

import hashlib

import numpy as np

from spikelut.boards.design import HASH_BYTES
from spikelut.boards.top import BoardCore
from spikelut.compiler.backend.mac import mac_params
from spikelut.hdl.mac import MACCore

__all__ = ["mac_hash", "make_mac_core"]


def mac_hash(net) -> bytes:
    """The first 16 bytes of a SHA-256 over the integer MAC network (encoding, weights,
    biases, shifts, widths): what the board reports as its model."""
    enc = net.encoding
    h = hashlib.sha256(b"spikelut-mac")
    h.update(repr((enc.bits, enc.frac_bits)).encode())
    h.update(
        np.asarray(enc.offset, np.float64).tobytes() + np.asarray(enc.gain, np.float64).tobytes()
    )
    for layer in net.layers:
        h.update(repr((layer.relu, layer.shift, layer.weight_bits, layer.act_bits)).encode())
        for arr in (layer.w, layer.b):
            a = np.ascontiguousarray(np.asarray(arr, np.int64))
            h.update(str(a.shape).encode() + a.tobytes())
    return h.digest()[:HASH_BYTES]


def make_mac_core(net, *, macs: int, clock_hz: int, divisor: int, **options) -> BoardCore:
    """The :class:`~spikelut.boards.top.BoardCore` of the integer MAC network ``net``
    (:class:`spikelut.compiler.ir.mac.MACNetwork`) on ``macs`` units; ``options`` go to
    :class:`BoardCore`. Raises ValueError for a bad unit count."""
    core = MACCore(mac_params(net, macs=macs))
    return BoardCore(
        core, clock_hz=int(clock_hz), divisor=divisor, model_hash=mac_hash(net), **options
    )
