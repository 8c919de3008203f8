"""The one settings object, read from ``QUALMON_*`` environment variables at start.

Every field documents its variable. Unsafe or inconsistent values are refused at start with a
message naming the variable, the value and what was expected.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.calendar import Calendar, parse_days

#: Slice dimensions that may be combined in ``QUALMON_SLICE_COMBINATIONS``.
DIMENSIONS = ("org", "product_line", "channel")
ALERT_SEVERITIES = ("minor", "major", "critical")


class ProductWatch(BaseModel):
    """A product launch under watch: its first ``days`` get an inspection scope of their own."""

    product_line: str = Field(description="Product line launched, e.g. health.")
    launched: date = Field(description="First day of sales (Asia/Shanghai).")
    org: str = Field(default="*", description="Org that launched it; * for the whole company.")


class Settings(BaseSettings):
    """qualmon's configuration; each field is ``QUALMON_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="QUALMON_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    kafka_bootstrap: str | None = Field(
        default=None,
        description="QUALMON_KAFKA_BOOTSTRAP: host:port[,...]; unset starts the embedded broker.",
    )
    topic_prefix: str = Field(
        default="qualmon",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="QUALMON_TOPIC_PREFIX: prefix of every topic (qualmon.events, ...).",
    )
    partitions: Annotated[int, Field(ge=1, le=256)] = Field(
        default=4, description="QUALMON_PARTITIONS: partitions of the input topic when created."
    )
    app_id: str = Field(
        default="qualmon-worker",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="QUALMON_APP_ID: Kafka consumer group of the workers.",
    )
    database_url: str | None = Field(
        default=None,
        description="QUALMON_DATABASE_URL: history store; unset: a SQLite file in the data dir.",
    )
    data_dir: Path = Field(
        default=Path(".qualmon"),
        description="QUALMON_DATA_DIR: where the SQLite store and worker data live.",
    )
    http_host: str = Field(default="127.0.0.1", description="QUALMON_HTTP_HOST")
    http_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=8000, description="QUALMON_HTTP_PORT (0 picks a free port)."
    )
    max_batch_events: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=5000, description="QUALMON_MAX_BATCH_EVENTS: largest batch POST /v1/events takes."
    )
    max_body_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=8 * 1024 * 1024, description="QUALMON_MAX_BODY_BYTES: larger requests get 413."
    )
    events_per_record: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=200,
        description=(
            "QUALMON_EVENTS_PER_RECORD: the API packs up to this many events of one org into one "
            "Kafka record (a JSON array), which amortises the per-record cost of the worker."
        ),
    )
    producer_linger_seconds: Annotated[float, Field(ge=0, le=5)] = Field(
        default=0.01, description="QUALMON_PRODUCER_LINGER_SECONDS"
    )
    request_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = Field(
        default=5.0,
        description="QUALMON_REQUEST_TIMEOUT_SECONDS: broker unreachable for this long -> 503.",
    )
    bucket_seconds: Annotated[int, Field(ge=60, le=31 * 86400)] = Field(
        default=86400,
        description="QUALMON_BUCKET_SECONDS: event-time bucket size, aligned to Asia/Shanghai.",
    )
    allowed_lateness_seconds: Annotated[int, Field(ge=0)] = Field(
        default=3600,
        description=(
            "QUALMON_ALLOWED_LATENESS_SECONDS: a bucket closes when the watermark (latest event "
            "time seen) passes its end by this much; later events are counted as late."
        ),
    )
    dedup_retention_seconds: Annotated[int, Field(ge=0)] = Field(
        default=2 * 86400,
        description=(
            "QUALMON_DEDUP_RETENTION_SECONDS: event ids are remembered this long (event time) "
            "after their bucket closed, so late re-sends are recognised as duplicates."
        ),
    )
    slice_combinations: tuple[tuple[str, ...], ...] = Field(
        default=(("org", "product_line"), ("org", "channel"), ("org", "product_line", "channel")),
        description=(
            "QUALMON_SLICE_COMBINATIONS: JSON list of dimension lists aggregated besides the "
            'single dimensions and the total, e.g. [["org","product_line"]].'
        ),
    )
    max_orgs: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=2000,
        description="QUALMON_MAX_ORGS: distinct orgs tracked; more are folded into org '_other'.",
    )
    metric_orgs_depth: Annotated[int, Field(ge=1, le=10)] = Field(
        default=2,
        description=(
            "QUALMON_METRIC_ORGS_DEPTH: indicator gauges are exported for orgs down to this depth "
            "of org_path (1 = head office) to keep label cardinality bounded."
        ),
    )
    checkpoint_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=2.0,
        description="QUALMON_CHECKPOINT_SECONDS: how often worker state is saved to the store.",
    )
    session_timeout_seconds: Annotated[float, Field(ge=6, le=300)] = Field(
        default=10.0, description="QUALMON_SESSION_TIMEOUT_SECONDS: consumer-group session."
    )
    shutdown_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=30.0,
        description=(
            "QUALMON_SHUTDOWN_TIMEOUT_SECONDS: a stopping worker that has not finished by then "
            "exits anyway (its Kafka clients never close when the broker is already gone)."
        ),
    )
    holidays: tuple[str, ...] = Field(
        default=(
            "2025-01-28/2025-02-04",  # Spring Festival 2025
            "2025-10-01/2025-10-08",  # National Day and Mid-Autumn 2025
            "2026-02-15/2026-02-23",  # Spring Festival 2026
            "2026-10-01/2026-10-07",  # National Day 2026
        ),
        description=(
            "QUALMON_HOLIDAYS: JSON list of public holidays, each YYYY-MM-DD or an inclusive "
            "range YYYY-MM-DD/YYYY-MM-DD (Asia/Shanghai); they form their own season, so the "
            "holiday dip does not alarm, and weigh little in the month's premium pace."
        ),
    )
    workdays: tuple[str, ...] = Field(
        default=(),
        description=(
            "QUALMON_WORKDAYS: JSON list of weekend days that are working days (调休), same "
            "format as QUALMON_HOLIDAYS."
        ),
    )
    claim_settlement_limit_days: Annotated[int, Field(ge=1, le=365)] = Field(
        default=30,
        description=(
            "QUALMON_CLAIM_SETTLEMENT_LIMIT_DAYS: a claim still open this many days after it was "
            "reported raises an SLA breach, before any close event arrives."
        ),
    )
    log_level: str = Field(
        default="info",
        pattern=r"^(debug|info|warning|error)$",
        description="QUALMON_LOG_LEVEL",
    )

    # ---- alerting and special inspections ----------------------------------------------------
    public_url: str | None = Field(
        default=None,
        description=(
            "QUALMON_PUBLIC_URL: base URL people reach the API at, for links in alerts "
            "(Alertmanager generatorURL); unset: http://QUALMON_HTTP_HOST:QUALMON_HTTP_PORT."
        ),
    )
    alertmanager_url: str | None = Field(
        default=None,
        description="QUALMON_ALERTMANAGER_URL: Alertmanager base URL (API v2); unset: not used.",
    )
    webhook_urls: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description=(
            "QUALMON_WEBHOOK_URLS: JSON object org code -> list of webhook URLs, e.g. "
            '{"*": ["https://pager.example/hook"], "44": ["https://gd.example/hook"]}; "*" '
            "receives alerts of every org. Requires QUALMON_WEBHOOK_SECRET."
        ),
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "QUALMON_WEBHOOK_SECRET: HMAC-SHA256 key signing webhook bodies (at least 16 "
            "characters). There is no default."
        ),
    )
    alert_routing: Literal["nearest", "ancestors"] = Field(
        default="nearest",
        description=(
            "QUALMON_ALERT_ROUTING: which orgs' webhooks get an alert: 'nearest' = the alert's "
            "org, else its closest ancestor with receivers; 'ancestors' = the org and every "
            "ancestor with receivers."
        ),
    )
    alert_cooldown_seconds: Annotated[int, Field(ge=0, le=90 * 86400)] = Field(
        default=2 * 86400,
        description=(
            "QUALMON_ALERT_COOLDOWN_SECONDS: event time within which a resolved alert fires "
            "again as the same alert (counted as a flap) instead of a new one."
        ),
    )
    alert_flap_limit: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3,
        description=(
            "QUALMON_ALERT_FLAP_LIMIT: after this many re-fires within the cooldown an alert is "
            "marked flapping and stops notifying until it stays resolved past the cooldown."
        ),
    )
    alert_resend_seconds: Annotated[float, Field(ge=1, le=240)] = Field(
        default=60.0,
        description=(
            "QUALMON_ALERT_RESEND_SECONDS: firing alerts are re-sent to Alertmanager this often; "
            "must stay below its resolve_timeout (5 min by default)."
        ),
    )
    notify_max_attempts: Annotated[int, Field(ge=1, le=50)] = Field(
        default=6,
        description=(
            "QUALMON_NOTIFY_MAX_ATTEMPTS: deliveries tried per notification before it becomes a "
            "dead letter."
        ),
    )
    notify_backoff_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=2.0,
        description=(
            "QUALMON_NOTIFY_BACKOFF_SECONDS: wait before the 2nd attempt; doubles each time."
        ),
    )
    notify_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        default=5.0, description="QUALMON_NOTIFY_TIMEOUT_SECONDS: per HTTP delivery."
    )
    alert_notify_min_severity: Literal["minor", "major", "critical"] = Field(
        default="major",
        description=(
            "QUALMON_ALERT_NOTIFY_MIN_SEVERITY: alerts below this severity are recorded, "
            "exported and published to the alerts topic, but sent to no person "
            "(Alertmanager, webhooks)."
        ),
    )
    alert_key_indicators: tuple[str, ...] = Field(
        default=("complaint_rate_per_10k_policies", "cooling_off_cancel_rate", "loss_ratio"),
        description=(
            "QUALMON_ALERT_KEY_INDICATORS: JSON list of indicators whose alerts are one "
            "severity step higher (the regulation's key quality indicators)."
        ),
    )
    inspection_min_severity: Literal["minor", "major", "critical"] = Field(
        default="major",
        description="QUALMON_INSPECTION_MIN_SEVERITY: alerts at least this severe open one.",
    )
    inspection_complaint_indicators: tuple[str, ...] = Field(
        default=("complaint_rate_per_10k_policies", "complaints_concentration"),
        description=(
            "QUALMON_INSPECTION_COMPLAINT_INDICATORS: JSON list of indicators or concentration "
            "anomalies (complaints_concentration, ...); an alert on one of these in "
            "an org, product line or channel (not the company total) is a complaint "
            "concentration and opens an inspection whatever its severity."
        ),
    )
    product_watch: tuple[ProductWatch, ...] = Field(
        default=(),
        description=(
            "QUALMON_PRODUCT_WATCH: JSON list of launches, e.g. "
            '[{"product_line": "health", "launched": "2026-03-01", "org": "*"}]; during the '
            "watch window any alert on the line opens an inspection, and readings score as "
            "alerts from QUALMON_PRODUCT_WATCH_SCORE up."
        ),
    )
    product_watch_days: Annotated[int, Field(ge=1, le=3660)] = Field(
        default=90, description="QUALMON_PRODUCT_WATCH_DAYS: length of a launch's watch window."
    )
    product_watch_score: Annotated[float, Field(gt=0, lt=0.5)] = Field(
        default=0.375,
        description=(
            "QUALMON_PRODUCT_WATCH_SCORE: the tighter threshold for watched lines (0.375 is "
            "p <= 1e-3, against 0.5 = 1e-4 elsewhere)."
        ),
    )
    evaluation_window_buckets: Annotated[int, Field(ge=3, le=400)] = Field(
        default=28,
        description=(
            "QUALMON_EVALUATION_WINDOW_BUCKETS: buckets compared before and after a measure "
            "takes effect (whole weeks of daily buckets keep the weekday mix equal)."
        ),
    )
    evaluation_alpha: Annotated[float, Field(gt=0, lt=0.5)] = Field(
        default=0.05,
        description="QUALMON_EVALUATION_ALPHA: significance level of the effect evaluation.",
    )

    @field_validator("alertmanager_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None, info: object) -> str | None:
        if value is not None:
            _check_url(f"QUALMON_{getattr(info, 'field_name', '').upper()}", value)
            return value.rstrip("/")
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_urls(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for org, urls in value.items():
            for url in urls:
                _check_url(f"QUALMON_WEBHOOK_URLS[{org!r}]", url)
        return value

    @field_validator("alert_key_indicators", "inspection_complaint_indicators")
    @classmethod
    def _known_indicators(cls, value: tuple[str, ...], info: object) -> tuple[str, ...]:
        from streams.aggregate import CONCENTRATING
        from streams.indicators import INDICATORS

        known = {*INDICATORS, *(f"{kind}_concentration" for kind in CONCENTRATING.values())}
        unknown = [v for v in value if v not in known]
        if unknown:
            name = f"QUALMON_{getattr(info, 'field_name', '').upper()}"
            raise ValueError(
                f"{name} has unknown indicators {unknown}; expected some of {sorted(known)}"
            )
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Settings:
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        if self.webhook_urls and not secret:
            raise ValueError(
                "QUALMON_WEBHOOK_URLS is set but QUALMON_WEBHOOK_SECRET is not; webhooks are "
                "always signed: set a random secret of at least 16 characters"
            )
        if secret and len(secret) < 16:
            raise ValueError(
                f"QUALMON_WEBHOOK_SECRET has {len(secret)} characters; expected at least 16 "
                "(a random string, e.g. from `openssl rand -hex 32`)"
            )
        return self

    @field_validator("slice_combinations")
    @classmethod
    def _known_dimensions(cls, value: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        for combo in value:
            unknown = [d for d in combo if d not in DIMENSIONS]
            if unknown or len(set(combo)) != len(combo) or len(combo) < 2:
                raise ValueError(
                    f"QUALMON_SLICE_COMBINATIONS has {list(combo)!r}; expected two or three "
                    f"distinct dimensions out of {list(DIMENSIONS)}"
                )
        return value

    @field_validator("holidays", "workdays")
    @classmethod
    def _days(cls, value: tuple[str, ...], info: Any) -> tuple[str, ...]:
        parse_days(value, f"QUALMON_{info.field_name.upper()}")
        return value

    def calendar(self) -> Calendar:
        """The business calendar the detectors' seasons and the premium pace use."""
        return Calendar(
            holidays=parse_days(self.holidays, "QUALMON_HOLIDAYS"),
            workdays=parse_days(self.workdays, "QUALMON_WORKDAYS"),
        )

    @model_validator(mode="after")
    def _lateness_fits_bucket(self) -> Settings:
        if self.allowed_lateness_seconds > 30 * self.bucket_seconds:
            raise ValueError(
                f"QUALMON_ALLOWED_LATENESS_SECONDS={self.allowed_lateness_seconds} keeps more "
                f"than 30 buckets of {self.bucket_seconds}s open; lower it or raise "
                "QUALMON_BUCKET_SECONDS"
            )
        return self

    # Derived names, kept here so every component spells them the same way.
    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}.events"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic_prefix}.events.dlq"

    @property
    def anomalies_topic(self) -> str:
        return f"{self.topic_prefix}.anomalies"

    @property
    def alerts_topic(self) -> str:
        return f"{self.topic_prefix}.alerts"

    @property
    def inspections_topic(self) -> str:
        return f"{self.topic_prefix}.inspections"

    @property
    def all_topics(self) -> tuple[str, ...]:
        return (
            self.events_topic,
            self.dlq_topic,
            self.anomalies_topic,
            self.alerts_topic,
            self.inspections_topic,
        )

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'qualmon.db'}"


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} has value {value!r}; expected an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError(f"{name} carries credentials in the URL; refused, use a secret instead")
