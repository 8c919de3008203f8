"""The alerting and special-inspection part of the one settings object.

:class:`monitor.settings.Settings` inherits these fields, so there is still one object, read
once at start; they live here because they are a concept of their own (receivers, routing,
notification retries, inspection rules, effect evaluation). Every field documents its
variable; unsafe values are refused by name.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

ALERT_SEVERITIES = ("minor", "major", "critical")


class ProductWatch(BaseModel):
    """A product launch under watch: its first ``days`` get an inspection scope of their own."""

    product_line: str = Field(description="Product line launched, e.g. health.")
    launched: date = Field(description="First day of sales (Asia/Shanghai).")
    org: str = Field(default="*", description="Org that launched it; * for the whole company.")


class AlertSettings(BaseSettings):
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
            "QUALMON_INSPECTION_COMPLAINT_INDICATORS: JSON list of indicators or business "
            "signals (complaints_concentration, complaint_sla_breach, ...); an alert on one of "
            "these in an org, product line or channel (not the company total) is a complaint "
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
        from alerting.rules import business
        from streams.indicators import ANOMALY_NAMES

        field = getattr(info, "field_name", "")
        known = [
            name
            for name in ANOMALY_NAMES
            # Data-quality anomalies never open an inspection: listing one would do nothing.
            if field != "inspection_complaint_indicators" or business(name)
        ]
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValueError(
                f"QUALMON_{field.upper()} has unknown indicators {unknown}; expected some of "
                f"{sorted(known)}"
            )
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Self:
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


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} has value {value!r}; expected an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError(f"{name} carries credentials in the URL; refused, use a secret instead")
