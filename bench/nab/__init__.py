"""NAB evaluation: ``make eval`` (``python -m bench.nab``).

Runs the production detector — ``qualmon detect``, with the service's own alert threshold —
over every file of the Numenta Anomaly Benchmark subset, scores it with NAB's method
(:mod:`bench.nab.scoring`, all three profiles), and prints it beside two baselines, each with the
best threshold chosen after the fact and with a threshold fixed in advance. The scorer is checked
against NAB's own per-file outputs (``reference_results/``) by the test suite.

Not part of the product: nothing here is imported by the service, and the package is not
installed with it.
"""
