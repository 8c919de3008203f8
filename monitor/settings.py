"""The one settings object, read from ``QUALMON_*`` environment variables at start.

Every field documents its variable. Unsafe or inconsistent values are refused at start with a
message naming the variable, the value and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from monitor.alert_settings import AlertSettings
from streams.calendar import Calendar, parse_days

#: Slice dimensions that may be combined in ``QUALMON_SLICE_COMBINATIONS``.
DIMENSIONS = ("org", "product_line", "channel")


class ApiKey(BaseModel):
    """One API key: its role and the secret itself."""

    role: Literal["producer", "reader", "manager"] = Field(description="What the key may do.")
    key: SecretStr = Field(description="The key: a random string, 24+ chars.")

    @field_validator("key")
    @classmethod
    def _long_enough(cls, key: SecretStr) -> SecretStr:
        # Said here rather than by min_length, whose message counts "items".
        length = len(key.get_secret_value())
        if length < 24:
            raise ValueError(f"the key has {length} characters; expected at least 24")
        return key


class Settings(AlertSettings):
    """qualmon's configuration; each field is ``QUALMON_<FIELD>`` in the environment. The
    alerting and inspection fields are declared in :class:`monitor.alert_settings.AlertSettings`."""

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
    api_keys: dict[str, ApiKey] = Field(
        default={},
        description=(
            'QUALMON_API_KEYS: JSON object key name -> {"role": producer|reader|manager, '
            '"key": a random string of 24+ characters}; empty: no authentication (keep the API '
            "on loopback then). The name is who the audit log records."
        ),
    )
    api_key: SecretStr | None = Field(
        default=None,
        description=(
            "QUALMON_API_KEY: the key `qualmon simulate` and `qualmon replay` present to the API "
            "(as a Bearer token) when QUALMON_API_KEYS is set there; a producer's or a manager's "
            "key."
        ),
    )
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
            "time seen) passes its end by this much; later events are counted as late. It also "
            "bounds how far ahead of the receiving clock an event may be dated (at least 60 s, "
            "for clock skew): one further ahead would close buckets still open, so the API "
            "refuses it with 422 and the worker sends it to the dead-letter topic."
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
        # 3: head office, provinces and their branches — the level the quality department
        # drills down to in Grafana (whose org list is read from these gauges).
        default=3,
        description=(
            "QUALMON_METRIC_ORGS_DEPTH: indicator gauges are exported for orgs down to this depth "
            "of org_path (1 = head office) to keep label cardinality bounded; deeper orgs' "
            "slices are still scored, alerted on and served by GET /v1/indicators."
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

    @field_validator("api_keys")
    @classmethod
    def _distinct_keys(cls, value: dict[str, ApiKey]) -> dict[str, ApiKey]:
        secrets = [k.key.get_secret_value() for k in value.values()]
        if len(set(secrets)) != len(secrets):
            raise ValueError("QUALMON_API_KEYS gives two names the same key; each needs its own")
        return value

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

    @field_validator("bucket_seconds")
    @classmethod
    def _whole_days(cls, value: int) -> int:
        # Buckets must meet at Shanghai midnight: days, months and the day judged whole are
        # rolled up from the buckets that end there.
        if 86400 % value and value % 86400:
            raise ValueError(
                f"QUALMON_BUCKET_SECONDS={value} neither divides a day nor is a whole number of "
                "days, so no bucket ends at midnight; use a divisor of 86400 (300, 900, 1800, "
                "3600, ...) or a multiple of it"
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
