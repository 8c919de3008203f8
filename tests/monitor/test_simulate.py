"""``qualmon simulate``: paced delivery over HTTP (a real server on loopback) and Kafka."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from monitor.broker import free_port
from monitor.settings import Settings
from monitor.simulate import SendError, add_arguments, run, send_http, send_kafka
from monitor.simulator import SimConfig, generate

# ---- delivery over HTTP, against a real server on loopback -----------------------------------


class _Receiver(ThreadingHTTPServer):
    """Answers with the next scripted status (202 once the script is used up), records bodies."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[int] = []
        self.bodies: list[list[dict]] = []
        self.authorizations: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        status = self.server.script.pop(0) if self.server.script else 202
        self.server.authorizations.append(self.headers.get("authorization"))
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


def test_run_presents_the_api_key_of_its_settings(receiver: _Receiver) -> None:
    args = _args("--days 1 --start 2026-03-02 --branches 2 --speed 0 --url", receiver.url)
    key = "k" * 32
    assert run(args, Settings(api_key=key), out=io.StringIO()) == 0
    assert receiver.authorizations and set(receiver.authorizations) == {f"Bearer {key}"}


def test_a_refused_key_says_which_setting_to_set(
    receiver: _Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.script = [401]
    args = _args("--days 1 --start 2026-03-02 --branches 2 --speed 0 --url", receiver.url)
    assert run(args, Settings(), out=io.StringIO()) == 1
    assert receiver.authorizations == [None]
    assert "set QUALMON_API_KEY to a producer's key" in capsys.readouterr().err


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
