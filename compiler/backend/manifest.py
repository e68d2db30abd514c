"""The manifest of a compiled core: ports, rates, placement, latency and estimates, as JSON."""

from __future__ import annotations

from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from spikelut.compiler.backend.cores import CoreKind, core_cycles
from spikelut.compiler.backend.estimate import estimate_logic
from spikelut.compiler.backend.latency import measure_latency
from spikelut.compiler.backend.placement import bandwidth_floor, core_blocks
from spikelut.compiler.passes.widths import LayerWidths
from spikelut.hdl.layer_params import serial_geometry
from spikelut.hdl.serial_core import serial_operand_memory
from spikelut.hdl.storage import Storage

__all__ = ["component_ports", "describe_shape", "manifest"]


def describe_shape(shape) -> dict:
    """A JSON-able description of a port or payload shape (``lib.data`` layouts included)."""
    if isinstance(shape, data.ArrayLayout):
        return {
            "array": describe_shape(shape.elem_shape),
            "length": shape.length,
            "width": shape.size,
        }
    if isinstance(shape, data.StructLayout):
        return {
            "struct": {
                name: {"offset": field.offset, **describe_shape(field.shape)}
                for name, field in shape
            },
            "width": shape.size,
        }
    s = Shape.cast(shape)
    return {"signed": s.signed, "width": s.width}


def component_ports(component: wiring.Component) -> dict:
    """A JSON-able description of every port of ``component``: plain ports with their flow
    and shape, streams with their direction and payload."""
    out = {}
    for name, member in component.signature.members.items():
        if member.is_port:
            out[name] = {"flow": member.flow.name, **describe_shape(member.shape)}
            continue
        stream = member.signature
        sig = stream.flip() if member.flow == wiring.In else stream
        payload = sig.members["payload"].shape
        out[name] = {
            "kind": "stream",
            "direction": "in" if member.flow == wiring.In else "out",
            "payload": describe_shape(payload),
        }
    return out


def manifest(
    net,
    kind: CoreKind,
    widths: list[LayerWidths],
    *,
    family: str | None = None,
    latency: bool = True,
) -> dict:
    """What a compiled core ``net`` of ``kind`` is: ports, cycles per inference, memory
    placement and bandwidth per layer, ``reloadable`` (no table is in logic); with ``latency`` (the default) ``latency_cycles``,
    the clock cycles from an input vector's last transfer to its result's, measured by
    simulating ``net`` (:func:`spikelut.compiler.backend.latency.measure_latency`); with
    ``family`` (``"ice40"``/``"ecp5"``) also the estimated LUT4s, flip-flops and logic cells
    (:func:`spikelut.compiler.backend.estimate.estimate_logic`), block RAMs and SPRAMs."""
    layers = []
    floor = 1
    for k, (p, w) in enumerate(zip(net.layers, widths, strict=True)):
        lf = (
            1
            if p.storage == Storage.LOGIC
            else bandwidth_floor(p.n_tables, p.out_dim, p.tables_per_cycle, p.lanes)
        )
        floor = max(floor, lf)
        extra = {}
        if kind is CoreKind.SERIAL:
            _, _, comparators, slots = serial_geometry(
                p.n_tables, p.n_c, p.out_dim, p.tables_per_cycle, p.lanes
            )
            extra = {
                "comparators": comparators,
                "index_cycles_per_group": slots,
                "operand_memory": serial_operand_memory(p),
            }
        layers.append(
            {
                "layer": k,
                "storage": p.storage.name.lower(),
                "tables_per_cycle": p.tables_per_cycle,
                "lanes": p.lanes,
                "indexer": kind.value if k == 0 or kind is CoreKind.SERIAL else "parallel",
                **extra,
                "cycles_per_inference": p.cycles_per_inference,
                "bank_cycles_per_inference": p.bank_cycles,
                "bandwidth_floor_cycles": lf,
                "bandwidth_fraction": lf / p.bank_cycles,
                "memory_words_per_lane": 0 if p.storage == Storage.LOGIC else p.depth,
                "memory_word_bits": p.lanes * p.table_width,
                "memory_bits": p.memory_bits,
                # SPRAM is not initialised by the bitstream: load it through w{k}_stream
                "load_at_boot": p.storage == Storage.SPRAM,
                "widths": w.to_dict(),
            }
        )
    cycles = core_cycles(net.layers)
    out = {
        "ports": component_ports(net),
        "indexer": kind.value,
        "cycles_per_inference": cycles,
        "bandwidth_floor_cycles": floor,
        "bandwidth_fraction": floor / cycles,
        # tables in logic are the gateware: only memory-backed tables load at run time
        "reloadable": all(p.storage != Storage.LOGIC for p in net.layers),
        "layers": layers,
    }
    if latency:
        out["latency_cycles"] = measure_latency(net)
    if family is not None:
        brams, sprams = core_blocks(kind, list(net.layers), family)
        est = estimate_logic(net.layers, family, kind, argmax=net.argmax)
        out["estimate"] = {**est, "block_rams": brams, "sprams": sprams, "family": family}
    return out
