"""``qualmon simulate``: the simulator's hours delivered over HTTP or Kafka, paced in wall time.

:func:`send_http` and :func:`send_kafka` deliver the hours of :func:`monitor.simulator.generate`
paced at ``speed`` simulated seconds per wall-clock second; :func:`add_arguments` and :func:`run`
are the command.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any, TextIO

import httpx
import orjson

from monitor.errors import QualmonError
from monitor.scenarios import SCENARIOS
from monitor.settings import Settings
from monitor.simulator import RECORD_EVENTS, Event, SimConfig, generate


class SendError(QualmonError):
    """The receiver refused the events or stayed unavailable; the message says which and why."""


class _Pacer:
    """Wall-clock delay until simulated hour ``n`` is due, at ``speed`` simulated s per wall s."""

    def __init__(self, speed: float) -> None:
        if not speed >= 0:
            raise ValueError(f"speed={speed!r}; expected simulated seconds per second >= 0")
        self.step = 0.0 if speed in (0, math.inf) else 3600 / speed
        self.t0 = time.monotonic()

    def delay(self, hour: int) -> float:
        return max(0.0, self.t0 + hour * self.step - time.monotonic())


def _retry_after(value: str | None) -> float:
    try:
        return min(30.0, max(0.0, float(value))) if value is not None else 1.0
    except ValueError:  # an HTTP date: not worth parsing for a simulator
        return 1.0


async def send_http(
    base_url: str,
    batches: Iterable[list[Event]],
    *,
    speed: float,
    batch_size: int,
    client: httpx.AsyncClient | None = None,
    max_retries: int = 5,
    api_key: str | None = None,
) -> int:
    """POST each hour to ``{base_url}/v1/events`` as JSON arrays of ``batch_size``; count sent.
    ``api_key`` goes as a Bearer token, for an API with authentication on."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; expected at least 1 event per request")
    url, pacer, sent = base_url.rstrip("/") + "/v1/events", _Pacer(speed), 0
    http = client or httpx.AsyncClient(timeout=30.0)
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    try:
        for hour, events in enumerate(batches):
            await asyncio.sleep(pacer.delay(hour))
            for lo in range(0, len(events), batch_size):
                chunk = events[lo : lo + batch_size]
                body = orjson.dumps(chunk)
                for attempt in range(max_retries + 1):
                    try:
                        response = await http.post(url, content=body, headers=headers)
                    except httpx.TransportError as exc:
                        raise SendError(
                            f"cannot reach {url}: {exc!r}; is the API running?"
                        ) from exc
                    if response.status_code != 503 or attempt == max_retries:
                        break
                    await asyncio.sleep(_retry_after(response.headers.get("retry-after")))
                if response.status_code in (401, 403):
                    hint = (
                        "QUALMON_API_KEY was refused: give a producer's or a manager's key"
                        if api_key
                        else "the API has authentication on: set QUALMON_API_KEY to a producer's "
                        "key"
                    )
                    raise SendError(
                        f"POST {url} answered {response.status_code}: {response.text[:500]}; {hint}"
                    )
                if response.status_code != 202:
                    raise SendError(
                        f"POST {url} answered {response.status_code} (expected 202) after "
                        f"{attempt + 1} attempt(s): {response.text[:2000]}"
                    )
                sent += len(chunk)
    finally:
        if client is None:
            await http.aclose()
    return sent


def _records(events: list[Event]) -> Iterator[tuple[str, list[Event]]]:
    by_org: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_org[event["org_code"]].append(event)
    for org, group in by_org.items():
        for lo in range(0, len(group), RECORD_EVENTS):
            yield org, group[lo : lo + RECORD_EVENTS]


def _settle(producer: Any, futures: list[tuple[str, Any]], topic: str) -> None:
    producer.flush()
    for org, future in futures:
        if future.failed():
            raise SendError(
                f"Kafka refused a record of org {org} on {topic!r}: {future.exception!r}"
            )
    futures.clear()


def send_kafka(bootstrap: str, topic: str, batches: Iterable[list[Event]], *, speed: float) -> int:
    """Produce each hour to ``topic`` as JSON arrays of one org, keyed by org_code; count sent."""
    with warnings.catch_warnings():
        # kafka-python 3 reads its protocol schemas through a deprecated importlib call.
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaProducer
        from kafka.errors import KafkaError
    pacer, sent, futures = _Pacer(speed), 0, []
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","), linger_ms=20, enable_idempotence=False
        )
    except KafkaError as exc:
        raise SendError(f"cannot reach Kafka at {bootstrap!r}: {exc!r}") from exc
    try:
        for hour, events in enumerate(batches):
            time.sleep(pacer.delay(hour))
            futures += [
                (org, producer.send(topic, key=org.encode(), value=orjson.dumps(chunk)))
                for org, chunk in _records(events)
            ]
            sent += len(events)
            if hour % 24 == 23:  # a day at a time bounds memory and stops at the first refusal
                _settle(producer, futures, topic)
        _settle(producer, futures, topic)
    finally:
        producer.close()
    return sent


# ---- command line -------------------------------------------------------------------------------


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d, add = SimConfig(), parser.add_argument
    add("--seed", type=int, default=d.seed, help="the same seed gives the same events")
    add("--branches", type=int, default=d.branches, help="number of selling branches")
    add("--product-lines", type=int, default=d.product_lines, help="use the first N product lines")
    add("--channels", type=int, default=d.channels, help="use the first N channels")
    add("--days", type=int, default=d.days, help="number of simulated days")
    add("--start", type=_day, help="first simulated day, YYYY-MM-DD (default: today - days)")
    add(
        "--scenario",
        dest="scenarios",
        action="append",
        default=[],
        choices=list(SCENARIOS),
        help="an incident to play near the end of the period; repeatable",
    )
    add("--volume", type=float, default=d.volume, help="multiply every rate by this factor")
    add_delivery_arguments(parser, speed=86400 / 3, speed_help="default: a day every 3 s")


def add_delivery_arguments(parser: argparse.ArgumentParser, speed: float, speed_help: str) -> None:
    """How events go out — over HTTP or into Kafka, paced in wall time: ``simulate`` and
    ``replay`` share these flags and :func:`deliver`."""
    add = parser.add_argument
    add("--speed", type=float, default=speed,
        help=f"event-time seconds per wall-clock second ({speed_help}; 0: no pacing)")  # fmt: skip
    add("--batch-size", type=int, default=500, help="events per HTTP request")
    add("--to", choices=("http", "kafka"), default="http", help="send over HTTP or into Kafka")
    add("--url", help="API base URL (default: http://QUALMON_HTTP_HOST:QUALMON_HTTP_PORT)")


def check_delivery(args: argparse.Namespace, settings: Settings, command: str) -> str | None:
    """What is wrong with the delivery flags and settings for ``qualmon command``, or None."""
    if not (args.speed >= 0 and args.batch_size >= 1):
        return (
            f"--speed {args.speed} --batch-size {args.batch_size}; expected a speed >= 0 "
            "(0: no pacing) and a batch size >= 1"
        )
    if args.to == "kafka" and not settings.kafka_bootstrap:
        return (
            f"qualmon {command} --to kafka needs QUALMON_KAFKA_BOOTSTRAP=host:port of the "
            "broker; or send with --to http to a running `qualmon run`"
        )
    return None


def deliver(args: argparse.Namespace, settings: Settings, batches: Iterable[list[Event]]) -> int:
    """Send the hours of ``batches`` as the flags say; the number sent. Raises SendError."""
    if args.to == "kafka":
        assert settings.kafka_bootstrap is not None
        topic = settings.events_topic
        return send_kafka(settings.kafka_bootstrap, topic, batches, speed=args.speed)
    url = args.url or f"http://{settings.http_host}:{settings.http_port}"
    key = settings.api_key.get_secret_value() if settings.api_key else None
    send = send_http(url, batches, speed=args.speed, batch_size=args.batch_size, api_key=key)
    return asyncio.run(send)


def _report_days(hours: Iterable[list[Event]], first: date, out: TextIO) -> Iterator[list[Event]]:
    # Senders ask for the next hour only once this one is sent: counting after the yield
    # counts events that went out.
    count = 0
    for n, events in enumerate(hours, start=1):
        yield events
        count += len(events)
        if n % 24 == 0:
            day = first + timedelta(days=n // 24 - 1)
            print(f"{day}  {count:>7,} events sent", file=out, flush=True)
            count = 0


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    """Generate, send, print one line per simulated day and the total."""
    try:
        # The flags are named after SimConfig's fields.
        fields = {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(SimConfig)
            if f.name != "holidays"  # from the settings, not a flag
        }
        cfg = SimConfig(
            **(fields | {"scenarios": tuple(args.scenarios)}),
            holidays=settings.calendar().holidays,
        )
    except ValueError as exc:
        print(f"qualmon simulate: {exc}", file=sys.stderr)
        return 2
    problem = check_delivery(args, settings, "simulate")
    if problem:
        print(f"qualmon simulate: {problem}", file=sys.stderr)
        return 2
    cfg = dataclasses.replace(cfg, start=cfg.first_day())
    batches = _report_days(generate(cfg), cfg.first_day(), out)
    try:
        sent = deliver(args, settings, batches)
    except SendError as exc:
        print(f"qualmon simulate: {exc}", file=sys.stderr)
        return 1
    print(f"total  {sent:,} events sent", file=out)
    return 0
