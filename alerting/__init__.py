"""Turning anomalies into action: alert rules, grouping, notifiers, special inspections.

Today qualmon publishes every anomaly to ``<prefix>.anomalies`` and stores it in the history
store; this package is where grouping, routing and the special-inspection loop will live.
"""
