"""Turning anomalies into action: alerts that reach people, and special inspections.

* :mod:`alerting.rules` — pure rules: severity, grouping key, scopes on the org tree, silences.
* :mod:`alerting.engine` — anomalies and readings of a worker checkpoint in, alert changes and
  queued notifications out, in one store transaction; idempotent for redelivered anomalies.
* :mod:`alerting.dispatcher` — the asyncio task delivering the outbox to Alertmanager, signed
  webhooks and Kafka topics, with retries, backoff and dead letters; never blocks the consumer.
* :mod:`alerting.inspections` — rules that open special inspections, their lifecycle, root
  causes, measures, overdue-measure alerts and the audit log.
* :mod:`alerting.evaluation` — a measure's effect computed from the indicator history
  (difference in differences against control orgs, permutation test).

Everything is state in the history store, so the worker can restart at any point.
"""
