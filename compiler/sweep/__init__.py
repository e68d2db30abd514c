"""Design-space sweeps: the spec, the Pareto fronts and the report (the energy estimate is
:mod:`spikelut.compiler.analysis.energy`).

The points themselves run in :mod:`spikelut.flows.sweep` (they need the board builds).
"""
