"""From an integer classifier and a placement to the checked parameters of its core.

:func:`network_params` maps a quantised :class:`~spikelut.compiler.ir.classifier.ClassifierMLP`
and a per-layer placement (storage, tables per cycle ``P``, outputs per beat ``L``) onto one
:class:`~spikelut.hdl.layer_params.LayerParams` per layer, with the exact widths of
:func:`spikelut.compiler.passes.widths.infer_widths`; :func:`build_network` makes the core.
"""

from __future__ import annotations

from spikelut.compiler.backend.cores import CoreKind, build_core
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.passes.widths import DEFAULT_MAX_WIDTH, LayerWidths, infer_widths
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.storage import Storage

__all__ = ["build_network", "network_params"]


def network_params(
    model: ClassifierMLP,
    plans: list[LayerPlan] | LayerPlan | None = None,
    *,
    kind: CoreKind = CoreKind.PARALLEL,
    max_width: int = DEFAULT_MAX_WIDTH,
) -> tuple[list[LayerParams], list[LayerWidths]]:
    """The checked hardware parameters of every layer of an integer classifier, and its
    widths.

    ``plans``: one :class:`~spikelut.compiler.backend.placement.LayerPlan` per layer, or one
    for every layer (default BRAM, P=1, L=Y); ``kind`` sets layer 0's indexer. Raises
    ``ValueError`` (``WidthError``) for a float network, a wrong number of plans, a width
    beyond ``max_width`` or a placement the layer cannot take.
    """
    if not model.is_integer:
        raise ValueError("the backend needs a quantised (integer) network; quantize first")
    widths = infer_widths(model, max_width=max_width)
    if plans is None:
        plans = LayerPlan()
    if isinstance(plans, LayerPlan):
        plans = [plans] * len(model.layers)
    if len(plans) != len(model.layers):
        raise ValueError(f"{len(plans)} layer plans for {len(model.layers)} layers")
    params = []
    for k, (layer, q, w, plan) in enumerate(
        zip(model.layers, model.quant, widths, plans, strict=True)
    ):
        p = dict(
            anchors_a=layer.a,
            anchors_b=layer.b,
            tables=layer.tables,
            in_dim=layer.in_dim,
            in_width=model.encoding.bits if k == 0 else widths[k - 1].out_width,
            table_width=q.table_bits,
            out_width=w.out_width,
            in_shift=q.in_shift,
            residual=layer.residual,
            in_bounds=None if k == 0 else (widths[k - 1].col_lo, widths[k - 1].col_hi),
            storage=plan.storage,
        )
        if plan.storage != Storage.LOGIC:
            p["tables_per_cycle"] = plan.rate(layer.n_tables, layer.out_dim)[0]
            p["lanes"] = plan.rate(layer.n_tables, layer.out_dim)[1]
        if k == 0:
            p["indexer"] = kind.indexer
        try:
            params.append(LayerParams(**p))
        except ValueError as e:
            raise ValueError(f"layer {k}: {e}") from None
    return params, widths


def build_network(model: ClassifierMLP, plans=None, *, kind: CoreKind = CoreKind.PARALLEL):
    """The network core of ``kind`` for an integer classifier placed by ``plans`` (see
    :func:`network_params`)."""
    params, _ = network_params(model, plans, kind=kind)
    return build_core(kind, params)
