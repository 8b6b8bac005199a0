"""``edge-mnv2 sweep``: the paper's accuracy/cost trade-off measured on the user's own device.

:func:`run_sweep` compiles and benches every variant of a width x resolution grid, :mod:`.pareto`
finds the variants no other beats on both latency and accuracy, :mod:`.results` writes ``sweep.csv``
and ``sweep.json``, and :mod:`.plot` draws ``sweep.png``.
"""

from edge_mnv2.sweep.grid import SweepResult, VariantResult, run_sweep

__all__ = ["SweepResult", "VariantResult", "run_sweep"]
