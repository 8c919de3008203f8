"""qualmon's benchmark: ``make bench`` (``python -m bench.throughput``).

One run starts an embedded broker, loads a million synthetic events, and measures the real
``qualmon run`` process end to end beside a raw aiokafka consume loop on the same topic, so the
worker's number always comes with the floor it is compared against. It also reports the state a
watched series costs. Missing the throughput target is a result, not a failure: the exit status
is non-zero only when the harness itself could not measure.
"""
