"""Design-space sweeps: the spec, the Pareto fronts, the energy estimate and the report.

The points themselves run in :mod:`spikelut.flows.sweep` (they need the board builds).
"""
