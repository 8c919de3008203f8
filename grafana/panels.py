"""Building blocks of qualmon's dashboards, on grafana-foundation-sdk's typed builders.

Every panel gets a unit and a datasource by fixed uid (see ``provisioning/datasources``), so a
dashboard never depends on what a Grafana instance happens to call its data sources. PostgreSQL
queries are a small typed dataquery of our own, registered with the SDK so that dashboards
read back from JSON keep them as such.
"""

from __future__ import annotations

from typing import Any, Self

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DynamicConfigValue,
    VariableHide,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

PROMETHEUS_UID = "qualmon-prometheus"
POSTGRES_UID = "qualmon-postgres"
POSTGRES_TYPE = "grafana-postgresql-datasource"
PROM = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
PG = DataSourceRef(type_val=POSTGRES_TYPE, uid=POSTGRES_UID)


class SqlQuery(cogvariants.Dataquery):
    """A table query of Grafana's PostgreSQL data source (code editor, raw SQL)."""

    def __init__(self, ref_id: str = "A", raw_sql: str = "", datasource: Any = None) -> None:
        self.ref_id, self.raw_sql = ref_id, raw_sql
        self.datasource = datasource or {"type": POSTGRES_TYPE, "uid": POSTGRES_UID}

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id, "datasource": self.datasource, "editorMode": "code",
            "format": "table", "rawQuery": True, "rawSql": self.raw_sql,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(data["refId"], data["rawSql"], data.get("datasource"))


cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(POSTGRES_TYPE, SqlQuery.from_json))


class Sql(cogbuilder.Builder[SqlQuery]):
    def __init__(self, raw_sql: str, ref_id: str = "A") -> None:
        self._internal = SqlQuery(ref_id, raw_sql)

    def build(self) -> SqlQuery:
        return self._internal


def prom(
    expr: str, legend: str = "", ref: str = "A", instant: bool = False
) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(PROM)
    if legend:
        query = query.legend_format(legend)
    return query.instant() if instant else query.range()


def series(title: str, unit: str, *queries: prometheus.Dataquery, w: int = 12) -> timeseries.Panel:
    """A time series; series named ``lower``/``expected``/``upper`` are drawn as a band.

    Options are always set: Grafana rejects a panel whose ``options`` is null.
    """
    panel = (
        timeseries.Panel().title(title).unit(unit).datasource(PROM).height(8).span(w)
        .legend(cb.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs([]))
        .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                 .sort(common.SortOrder.NONE))
        .override_by_name("upper", [DynamicConfigValue("custom.fillBelowTo", "lower"),
                                    DynamicConfigValue("custom.lineWidth", 0),
                                    DynamicConfigValue("custom.fillOpacity", 15)])
        .override_by_name("lower", [DynamicConfigValue("custom.lineWidth", 0)])
        .override_by_name("expected", [DynamicConfigValue(
            "custom.lineStyle", {"fill": "dash", "dash": [10, 10]})])
    )  # fmt: skip
    for q in queries:
        panel = panel.with_target(q)
    return panel


def single(title: str, unit: str, query: prometheus.Dataquery, w: int = 6) -> stat.Panel:
    return (
        stat.Panel().title(title).unit(unit).datasource(PROM).height(5).span(w)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common.BigValueGraphMode.LINE)
        .color_mode(common.BigValueColorMode.VALUE)
        .with_target(query)
    )  # fmt: skip


def _table(datasource: DataSourceRef, title: str, unit: str, w: int, h: int) -> table.Panel:
    return (
        table.Panel().title(title).unit(unit).datasource(datasource).height(h).span(w)
        .show_header(True)
    )  # fmt: skip


def sql_table(title: str, sql: str, unit: str = "none", w: int = 24) -> table.Panel:
    return _table(PG, title, unit, w, 10).with_target(Sql(sql))


def prom_table(title: str, unit: str, query: prometheus.Dataquery, w: int = 12) -> table.Panel:
    return _table(PROM, title, unit, w, 8).with_target(query)


def label_variable(
    name: str, label: str, metric: str = "qualmon_anomaly_score", multi: bool = False
) -> Any:
    """A variable over one slice label; ``*`` (all) by default. Queries compare with ``=``, so
    a multi-valued one is meant for panels that repeat per value. ``metric`` may carry a
    selector on earlier variables, so that choices cascade (org → product line → channel)."""
    default = (
        VariableOption(selected=True, text=["*"], value=["*"])
        if multi
        else (VariableOption(selected=True, text="*", value="*"))
    )
    return (
        db.QueryVariable(name).label(label).datasource(PROM)
        .query({"query": f"label_values({metric}, {name})", "refId": f"{name}-values"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .current(default)
        .include_all(False).multi(multi).sort(VariableSort.ALPHABETICAL_ASC)
    )  # fmt: skip


def custom_variable(name: str, label: str, values: list[str], default: str) -> Any:
    return (
        db.CustomVariable(name).label(label).values(",".join(values))
        .current(VariableOption(selected=True, text=default, value=default))
        .options([VariableOption(selected=v == default, text=v, value=v) for v in values])
        .multi(False).include_all(False).hide(VariableHide.DONT_HIDE)
    )  # fmt: skip


def dashboard(uid: str, title: str, description: str, tags: list[str]) -> db.Dashboard:
    return (
        db.Dashboard(title).uid(uid).description(description).tags(["qualmon", *tags])
        .timezone("browser").time("now-7d", "now").refresh("1m").readonly()
    )  # fmt: skip
