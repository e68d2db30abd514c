"""Payload layouts shared by the gateware components (``lib.data`` layouts only).

- a value vector: ``vector_layout(width, n)``, ``n`` signed ``width``-bit values, element 0
  in the least significant bits;
- the indices of one input vector: ``index_layout(n_c, n_t)``, ``n_t`` unsigned ``n_c``-bit
  row indices (index ``i`` selects a row of table ``i``);
- one AER spike event: ``event_layout(dim, time_width)`` with ``neuron`` (0..dim-1),
  ``time`` (unsigned time step) and ``last`` (this event ends the vector);
- a chunk of a vector streamed ``L`` values at a time: ``chunk_layout(width, lanes)`` with
  ``values`` (``lanes`` signed values, the chunk's first in the least significant bits) and
  ``last`` (the vector's final chunk);
- the classifier result: ``label_layout(dim, width)`` with ``index`` (the argmax, ties to the
  lowest index) and ``logits`` (the vector it was taken over).
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["chunk_layout", "event_layout", "index_layout", "label_layout", "vector_layout"]


def vector_layout(width: int, n: int) -> data.ArrayLayout:
    """``n`` signed values of ``width`` bits."""
    return data.ArrayLayout(signed(width), n)


def chunk_layout(width: int, lanes: int) -> data.StructLayout:
    """``lanes`` consecutive values of a vector streamed a chunk at a time, and ``last``."""
    return data.StructLayout({"values": vector_layout(width, lanes), "last": unsigned(1)})


def index_layout(n_c: int, n_t: int) -> data.ArrayLayout:
    """``n_t`` table row indices of ``n_c`` bits each."""
    return data.ArrayLayout(unsigned(n_c), n_t)


def event_layout(dim: int, time_width: int) -> data.StructLayout:
    """One spike event of a ``dim``-neuron vector with a ``time_width``-bit time step."""
    return data.StructLayout(
        {"neuron": range(dim), "time": unsigned(time_width), "last": unsigned(1)}
    )


def label_layout(dim: int, width: int) -> data.StructLayout:
    """The argmax ``index`` of a ``dim``-vector of ``width``-bit values, with the vector."""
    return data.StructLayout({"index": range(dim), "logits": vector_layout(width, dim)})
