"""The simulator: deterministic valid events, a realistic shape, incidents that show, delivery."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import io
import json
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from monitor.broker import free_port
from monitor.settings import Settings
from monitor.simulate import SendError, add_arguments, run, send_http, send_kafka
from monitor.simulator import SimConfig, generate
from streams.schema import EVENT_TYPES, parse_event

# Starts on a Friday: the run covers weekends, mid-March and the last three days of March, and
# the hotline outage (day 25) falls on Tuesday 31 March, a full working day.
FRIDAY_6_MARCH = date(2026, 3, 6)
MARCH = SimConfig(
    branches=6, days=28, start=FRIDAY_6_MARCH, scenarios=("mis-selling", "hotline-outage")
)
MIS_SELLING = ("4403", "life", "BANCA")
WAVE = range(20, 27)  # days of the mis-selling wave in MARCH


@functools.cache
def hours(cfg: SimConfig) -> tuple[tuple[dict, ...], ...]:
    return tuple(tuple(batch) for batch in generate(cfg))


def events(cfg: SimConfig) -> Iterator[tuple[int, dict]]:
    """(simulated day index, event) for every event of a run."""
    for n, batch in enumerate(hours(cfg)):
        for event in batch:
            yield n // 24, event


def test_same_seed_same_events_other_seed_other_events() -> None:
    cfg = SimConfig(seed=5, branches=3, product_lines=2, channels=3, days=2, start=date(2026, 3, 2))
    first = list(generate(cfg))
    assert first == list(generate(cfg))
    assert first != list(generate(dataclasses.replace(cfg, seed=6)))


def test_an_incident_leaves_the_days_before_it_alone() -> None:
    cfg = SimConfig(seed=5, branches=4, days=10, start=date(2026, 3, 2))
    calm, wave = hours(cfg), hours(dataclasses.replace(cfg, scenarios=("mis-selling",)))
    assert calm[: 2 * 24] == wave[: 2 * 24]  # the wave starts on day 10 - 8 = 2
    assert calm != wave


def test_every_event_is_valid_unique_and_in_order() -> None:
    cfg = SimConfig(seed=3, days=3, start=date(2026, 3, 10))
    ids: set[str] = set()
    types: Counter[str] = Counter()
    for batch in hours(cfg):
        times = [datetime.fromisoformat(e["event_time"]) for e in batch]
        assert times == sorted(times)
        for event in batch:
            assert json.loads(json.dumps(event)) == event
            parse_event(event)
            assert event["event_time"].endswith("+08:00")
            assert event["org_path"] == f"00/{event['org_code'][:2]}/{event['org_code']}"
            assert event.get("customer_id", "C0")[0] == "C"
            ids.add(event["event_id"])
            types[event["event_type"]] += 1
    assert len(ids) == sum(types.values())
    assert set(types) == set(EVENT_TYPES)
    assert 2_000 <= sum(types.values()) / cfg.days <= 5_000
    assert 0.005 < types["policy.cooling_off_cancel"] / types["policy.issued"] < 0.02


def test_closures_follow_their_reports() -> None:
    opened: dict[str, str] = {}
    for _, event in events(MARCH):
        payload = event["payload"]
        if event["event_type"] in ("claim.reported", "complaint.received"):
            opened[payload.get("claim_id") or payload["complaint_id"]] = event["event_time"]
        elif event["event_type"] == "claim.closed":
            assert opened[payload["claim_id"]] == payload["reported_at"] < event["event_time"]
        elif event["event_type"] == "complaint.closed":
            assert opened[payload["complaint_id"]] == payload["received_at"] < event["event_time"]


def test_volume_follows_weekdays_month_end_and_branch_size() -> None:
    per_day: Counter[int] = Counter()
    per_org: Counter[str] = Counter()
    premium: defaultdict[int, float] = defaultdict(float)
    for day, event in events(MARCH):
        per_day[day] += 1
        per_org[event["org_code"]] += 1
        if event["event_type"] == "premium.received":
            premium[day] += float(event["amount"])
    weekday = {d: (FRIDAY_6_MARCH + timedelta(days=d)).weekday() for d in range(MARCH.days)}
    month_end = (23, 24, 25)  # Sun 29 - Tue 31 March
    weekends = [n for d, n in per_day.items() if weekday[d] >= 5 and d not in month_end]
    workdays = [n for d, n in per_day.items() if weekday[d] < 5 and d not in month_end]
    assert max(weekends) < 0.6 * min(workdays)
    # Mon-Tue 30-31 March against Mon-Tue 16-17 March.
    assert premium[24] + premium[25] > 1.8 * (premium[10] + premium[11])
    assert max(per_org.values()) >= 5 * min(per_org.values())


def test_mis_selling_wave_stands_out_in_its_slice_only() -> None:
    target: Counter[int] = Counter()
    others: Counter[int] = Counter()
    for day, event in events(MARCH):
        if event["event_type"] in ("complaint.received", "policy.cooling_off_cancel"):
            in_slice = (event["org_code"], event["product_line"], event["channel"]) == MIS_SELLING
            (target if in_slice else others)[day] += 1
    before = range(WAVE.start)

    def daily(counts: Counter[int], days: range) -> float:
        return sum(counts[d] for d in days) / len(days)

    assert daily(target, WAVE) >= 4 * daily(target, before) > 0
    assert 0.7 < daily(others, WAVE) / daily(others, before) < 1.4


def test_hotline_outage_loses_calls_at_one_org_for_one_day() -> None:
    calls: defaultdict[tuple[bool, bool], list[bool]] = defaultdict(list)
    for day, event in events(MARCH):
        if event["event_type"] == "call.completed":
            calls[event["org_code"] == "3101", day == 25].append(event["payload"]["answered"])
    ratio = {key: sum(answered) / len(answered) for key, answered in calls.items()}
    assert len(calls[True, True]) > 50
    assert ratio[True, True] < 0.7
    assert min(ratio[True, False], ratio[False, True], ratio[False, False]) > 0.85


def test_unknown_scenario_is_named() -> None:
    with pytest.raises(
        ValueError, match="unknown scenario 'x'; known: mis-selling, hotline-outage"
    ):
        generate(SimConfig(scenarios=("x",)))


@pytest.mark.parametrize(
    "bad", [{"branches": 0}, {"days": 0}, {"volume": 0.0}, {"channels": 7}], ids=str
)
def test_bad_config_is_named(bad: dict) -> None:
    with pytest.raises(ValueError, match=f"SimConfig {next(iter(bad))}="):
        SimConfig(**bad)


# ---- delivery over HTTP, against a real server on loopback -----------------------------------


class _Receiver(ThreadingHTTPServer):
    """Answers with the next scripted status (202 once the script is used up), records bodies."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[int] = []
        self.bodies: list[list[dict]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        status = self.server.script.pop(0) if self.server.script else 202
        if status == 202:
            self.server.bodies.append(body)
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "0")
        reply = json.dumps({"detail": "event_time: missing offset"} if status == 422 else {})
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


SMALL_DAY = SimConfig(
    seed=2, branches=2, product_lines=2, channels=2, days=1, start=date(2026, 3, 3)
)


def test_send_http_retries_a_503_and_delivers_everything(receiver: _Receiver) -> None:
    receiver.script.append(503)
    generated = [e["event_id"] for batch in generate(SMALL_DAY) for e in batch]
    sent = asyncio.run(send_http(receiver.url, generate(SMALL_DAY), speed=0, batch_size=50))
    bodies = receiver.bodies
    assert sent == len(generated) > 100
    assert [e["event_id"] for body in bodies for e in body] == generated
    assert max(len(body) for body in bodies) <= 50


def test_send_http_stops_on_a_client_error_with_its_body(receiver: _Receiver) -> None:
    receiver.script.append(422)
    with pytest.raises(SendError, match=r"answered 422.*event_time: missing offset"):
        asyncio.run(send_http(receiver.url, generate(SMALL_DAY), speed=0, batch_size=50))


def test_send_http_gives_up_after_bounded_retries(receiver: _Receiver) -> None:
    receiver.script.extend([503] * 3)
    with pytest.raises(SendError, match=r"answered 503.*3 attempt"):
        asyncio.run(
            send_http(receiver.url, generate(SMALL_DAY), speed=0, batch_size=50, max_retries=2)
        )


def _args(flags: str, *more: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args([*flags.split(), *more])


def test_run_prints_each_day_and_the_total(receiver: _Receiver) -> None:
    args = _args("--days 2 --start 2026-03-02 --branches 2 --speed 0 --url", receiver.url)
    out = io.StringIO()
    assert run(args, Settings(), out=out) == 0
    lines = out.getvalue().splitlines()
    received = sum(len(body) for body in receiver.bodies)
    assert [line.split()[0] for line in lines] == ["2026-03-02", "2026-03-03", "total"]
    assert lines[-1] == f"total  {received:,} events sent"


def test_run_to_kafka_needs_a_bootstrap(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(_args("--to kafka"), Settings(kafka_bootstrap=None)) == 2
    assert "QUALMON_KAFKA_BOOTSTRAP" in capsys.readouterr().err


# ---- delivery into Kafka, on the real embedded broker -------------------------------------------


async def _consume(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, list[dict]]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[tuple[bytes, list[dict]]] = []
    try:
        while sum(len(events) for _, events in records) < expected:
            batch = await consumer.getmany(timeout_ms=5000)
            if not batch:
                break
            records += [(m.key, orjson.loads(m.value)) for ms in batch.values() for m in ms]
    finally:
        await consumer.stop()
    return records


@pytest.mark.broker
def test_send_kafka_packs_one_org_per_record(kafka_settings: Settings) -> None:
    bootstrap, topic = kafka_settings.kafka_bootstrap, kafka_settings.events_topic
    assert bootstrap is not None
    generated = [e["event_id"] for batch in generate(SMALL_DAY) for e in batch]
    assert send_kafka(bootstrap, topic, generate(SMALL_DAY), speed=0) == len(generated)
    records = asyncio.run(_consume(bootstrap, topic, len(generated)))
    assert sorted(e["event_id"] for _, events in records for e in events) == sorted(generated)
    for key, events in records:
        assert 0 < len(events) <= 200
        assert {e["org_code"].encode() for e in events} == {key}


def test_run_names_an_unreachable_api(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args("--days 1 --speed 0 --url", f"http://127.0.0.1:{free_port()}")
    assert run(args, Settings()) == 1
    assert "cannot reach http://127.0.0.1:" in capsys.readouterr().err
