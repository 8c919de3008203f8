"""Grafana provisioning for qualmon, kept as code.

``provisioning/`` holds the data sources (fixed uids ``qualmon-prometheus`` and
``qualmon-postgres``) and the dashboard provider; ``dashboards/`` the dashboards as JSON, written
by ``build_dashboards.py`` with grafana-foundation-sdk's typed builders. Mount both into Grafana
as ``deploy/compose.yaml`` does; nothing here runs inside qualmon itself.
"""
