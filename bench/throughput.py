"""Worker throughput beside a raw consume loop, on the embedded broker; bytes per watched series.

Events are generated and encoded before anything is timed. The worker is the real ``qualmon run``
subprocess, timed by its own ``qualmon_events_total`` counter from the first scrape after
``/readyz`` until every event is counted, so start-up and the consumer-group join are excluded.

    python -m bench.throughput [--events 1000000] [--single-events 200000] [--chunk 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import pickle
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from random import Random
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from monitor.broker import EmbeddedBroker, free_port
from monitor.producer import pack
from monitor.settings import Settings
from monitor.topics import ensure_topics
from streams.aggregate import ClosedBucket
from streams.indicators import FIELD, new_accumulator
from streams.schema import parse_event
from streams.scoring import SeriesBank
from streams.windows import SHANGHAI

TARGET_EVENTS_PER_SECOND = 20_000
PARTITIONS = 4
SPAN_SECONDS = 30 * 86400
START = datetime(2026, 3, 2, tzinfo=SHANGHAI).timestamp()
WORKER_DEADLINE, STALL_SECONDS = 15 * 60, 120

# 10 provinces × 5 branches under head office "00"; skewed sizes, as real branch networks are.
PROVINCES = ("11", "31", "32", "33", "35", "37", "42", "44", "51", "61")
ORGS = [(f"{p}{b:02d}", f"00/{p}/{p}{b:02d}") for p in PROVINCES for b in range(1, 6)]
ORG_WEIGHTS = [1 / (i + 1) ** 0.6 for i in range(len(ORGS))]
LINES = ("life", "health", "accident", "annuity", "universal")
CHANNELS = ("AGENCY", "BANCA", "TELE", "ONLINE", "GROUP", "BROKER")


class BenchError(Exception):
    """The harness could not measure (not: the worker was slow)."""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, SHANGHAI).isoformat(timespec="seconds")


def _money(rng: Random, mu: float) -> str:
    return f"{rng.lognormvariate(mu, 0.8):.2f}"


# Share of each event type in the stream: calls and premiums dominate, as at a life insurer.
MIX = {
    "call.completed": 30,
    "premium.received": 22,
    "policy.issued": 15,
    "claim.reported": 7,
    "claim.closed": 7,
    "survey.response": 5,
    "complaint.received": 3,
    "complaint.closed": 2.5,
    "inspection.sample": 2,
    "policy.surrendered": 2,
    "policy.cooling_off_cancel": 1.5,
}


def _payload(kind: str, r: Random, t: float, i: int) -> dict[str, Any]:
    if kind == "call.completed":
        wait = round(r.expovariate(1 / 15), 1)
        return {"queue": "95500", "answered": r.random() < 0.93, "wait_seconds": wait}
    if kind == "premium.received":
        first = r.random() < 0.4
        return {
            "premium": _money(r, 8),
            "premium_type": "FIRST" if first else "RENEWAL",
            "period_no": 1 if first else r.randint(2, 20),
        }
    if kind == "policy.issued":
        return {"premium": _money(r, 8.5), "pay_mode": r.choice(("REGULAR", "REGULAR", "SINGLE"))}
    if kind == "claim.reported":
        return {"claim_id": f"C{i}", "claimed_amount": _money(r, 9)}
    if kind == "claim.closed":  # reported up to 20 days before it closes
        return {
            "claim_id": f"C{i}",
            "decision": r.choice(("PAID", "PAID", "PARTIAL", "DECLINED")),
            "paid_amount": _money(r, 8.8),
            "reported_at": _iso(t - r.uniform(3600, 20 * 86400)),
        }
    if kind == "survey.response":
        return {"touchpoint": "claim", "csat_1_5": r.randint(1, 5)}
    if kind == "complaint.received":
        return {
            "complaint_id": f"Q{i}",
            "source": "REGULATOR" if r.random() < 0.2 else "OWN",
            "category": r.choice(("SALES", "CLAIM", "SERVICE")),
        }
    if kind == "complaint.closed":
        received = _iso(t - r.uniform(86400, 9 * 86400))
        return {"complaint_id": f"Q{i}", "received_at": received, "outcome": "REJECTED"}
    if kind == "inspection.sample":
        return {"object_type": "policy", "compliant": r.random() < 0.95}
    if kind == "policy.surrendered":
        return {"surrender_amount": _money(r, 9), "policy_year": r.randint(1, 20)}
    return {"refund": _money(r, 8), "days_since_effective": r.randint(0, 15)}  # cooling-off


def generate_events(n: int, seed: int, tag: str) -> list[dict[str, Any]]:
    """``n`` valid events over 30 days, in time order up to ten minutes of jitter."""
    rng = Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=n)
    orgs = rng.choices(ORGS, weights=ORG_WEIGHTS, k=n)
    lines, channels = rng.choices(LINES, k=n), rng.choices(CHANNELS, k=n)
    events = []
    for i in range(n):
        t = START + i * SPAN_SECONDS / n + rng.random() * 600
        kind, (org, path), line = kinds[i], orgs[i], lines[i]
        events.append(
            {
                "event_id": f"{tag}-{i}",
                "event_type": kind,
                "event_time": _iso(t),
                "org_code": org,
                "org_path": path,
                "product_line": line,
                "product_code": f"{line[:2].upper()}{i % 7}",
                "channel": channels[i],
                "payload": _payload(kind, rng, t, i),
            }
        )
    # Validating a sample keeps generation fast; the worker's 'invalid' count checks them all.
    for event in events[:: max(1, n // 3000)]:
        parse_event(event)
    return events


def encode_batched(events: list[dict[str, Any]], per_record: int, chunk: int) -> list[Any]:
    """Records as the API writes them: one request of ``chunk`` events at a time, packed by org."""
    return [
        rec for i in range(0, len(events), chunk) for rec in pack(events[i : i + chunk], per_record)
    ]


def encode_single(events: list[dict[str, Any]]) -> list[Any]:
    """One record per event, as a plain producer that does not batch would write them."""
    return [(e["org_code"].encode(), orjson.dumps(e)) for e in events]


def load(bootstrap: str, topic: str, records: list[Any]) -> float:
    """Produce every record; returns seconds taken."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        batch_size=1 << 20,
        acks=1,
        enable_idempotence=False,
        max_request_size=16 << 20,
    )
    started = time.perf_counter()
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=30)
    return time.perf_counter() - started


async def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    """The floor: fetch and decode every record, nothing else; returns seconds to read all."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        count, started = 0, time.perf_counter()
        while count < expected:
            if time.perf_counter() - started > WORKER_DEADLINE:
                raise BenchError(f"raw consumer read {count} of {expected} events on {topic}")
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    data = orjson.loads(record.value)
                    count += len(data) if isinstance(data, list) else 1
        return time.perf_counter() - started
    finally:
        await consumer.stop()


@dataclass
class WorkerRun:
    events_per_second: float
    outcomes: dict[str, float]
    bucket_close_mean: float
    buckets_closed: float
    series: float
    rss_ready_mib: float
    rss_end_mib: float
    rss_peak_mib: float
    scrape_seconds: float


def _rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _scrape(client: httpx.Client, url: str) -> dict[str, float]:
    """Samples of /metrics, summed over labels except the event outcome (kept as a suffix)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get(url + "/metrics").text):
        for s in family.samples:
            name = s.name + (f":{s.labels['outcome']}" if s.name == "qualmon_events_total" else "")
            out[name] = out.get(name, 0.0) + s.value
    return out


def _counted(samples: dict[str, float]) -> float:
    return sum(v for k, v in samples.items() if k.startswith("qualmon_events_total:"))


@contextlib.contextmanager
def worker_process(bootstrap: str, prefix: str, workdir: Path) -> Iterator[tuple[Any, str]]:
    """A ``qualmon run`` subprocess on its own app id, data dir and port; stopped on exit."""
    port = free_port()
    env = {
        **os.environ,
        "QUALMON_KAFKA_BOOTSTRAP": bootstrap,
        "QUALMON_TOPIC_PREFIX": prefix,
        "QUALMON_APP_ID": f"{prefix}-worker",
        "QUALMON_DATA_DIR": str(workdir / prefix),
        "QUALMON_HTTP_PORT": str(port),
        "QUALMON_LOG_LEVEL": "info",
        "QUALMON_BUCKET_SECONDS": "86400",
        "QUALMON_PARTITIONS": str(PARTITIONS),
    }
    log_path = workdir / f"{prefix}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    except BaseException:
        tail = log_path.read_text(errors="replace").splitlines()[-25:]
        print("--- worker log tail ---", *tail, "---", sep="\n", file=sys.stderr)
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_ready(client: httpx.Client, url: str, proc: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"worker exited with status {proc.returncode} before /readyz")
        with contextlib.suppress(httpx.HTTPError):
            if client.get(url + "/readyz").status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"worker not ready at {url}/readyz within {timeout:.0f}s")


def measure_worker(bootstrap: str, prefix: str, expected: int, workdir: Path) -> WorkerRun:
    """Events/s of the worker from its first scrape after readiness until all are counted."""
    with (
        worker_process(bootstrap, prefix, workdir) as (proc, url),
        httpx.Client(timeout=30) as client,
    ):
        _wait_ready(client, url, proc)
        rss_ready = _rss_mib(proc.pid)
        t0 = last_change = time.perf_counter()
        n0 = counted = _counted(samples := _scrape(client, url))
        scrapes = 0.0
        while counted < expected:
            now = time.perf_counter()
            if (
                proc.poll() is not None
                or now - t0 > WORKER_DEADLINE
                or now - last_change > STALL_SECONDS
            ):
                raise BenchError(
                    f"worker counted {counted:.0f} of {expected} events in {now - t0:.0f}s"
                    f" (exit status {proc.poll()})"
                )
            time.sleep(0.5)
            before = time.perf_counter()
            samples = _scrape(client, url)
            scrapes = max(scrapes, time.perf_counter() - before)
            if _counted(samples) != counted:
                counted, last_change = _counted(samples), time.perf_counter()
        elapsed = time.perf_counter() - t0
        close_n = samples.get("qualmon_bucket_close_seconds_count", 0.0)
        return WorkerRun(
            events_per_second=(expected - n0) / elapsed if expected > n0 else float("nan"),
            outcomes={k.split(":")[1]: v for k, v in samples.items() if ":" in k and v},
            bucket_close_mean=samples.get("qualmon_bucket_close_seconds_sum", 0.0)
            / max(close_n, 1),
            buckets_closed=close_n,
            series=samples.get("qualmon_series_watched", 0.0),
            rss_ready_mib=rss_ready,
            rss_end_mib=_rss_mib(proc.pid),
            rss_peak_mib=_rss_mib(proc.pid, "VmHWM"),
            scrape_seconds=scrapes,
        )


def _accumulator(rng: Random, size: float) -> list[float]:
    """One slice-day of sums, scaled to the slice's size, with binomial-ish noise."""
    acc, f = new_accumulator(), FIELD
    calls = max(1.0, round(rng.gauss(120 * size, 3 * size**0.5)))
    acc[f["calls"]], acc[f["calls_answered"]] = calls, round(calls * rng.uniform(0.9, 0.96))
    policies = max(1.0, round(rng.gauss(40 * size, 2 * size**0.5)))
    acc[f["policies_issued"]], acc[f["written_premium_yuan"]] = policies, policies * 6000
    acc[f["premium_receipts"]] = round(rng.gauss(90 * size, 3 * size**0.5))
    acc[f["premium_received_yuan"]] = acc[f["premium_receipts"]] * rng.uniform(2500, 3500)
    acc[f["complaints"]] = rng.randrange(0, 3 + int(size))
    acc[f["cooling_off_cancels"]] = rng.randrange(0, 2 + int(size))
    acc[f["claims_closed"]] = closed = rng.randrange(1, 5 + int(20 * size))
    acc[f["claims_paid_yuan"]], acc[f["settlement_days_sum"]] = (
        closed * 7000,
        closed * rng.uniform(3, 9),
    )
    return acc


def series_footprint(
    slices: int = 2000, buckets: int = 60, seed: int = 7
) -> tuple[float, float, int]:
    """(pickled bytes, in-memory bytes, series) per watched series after ``buckets`` closed days."""
    rng = Random(seed)
    keys = [(org, line, ch) for org, _ in ORGS for line in (*LINES, "*") for ch in (*CHANNELS, "*")]
    keys = rng.sample(keys, min(slices, len(keys)))
    sizes = [rng.lognormvariate(0, 1) for _ in keys]
    bank = SeriesBank(86400)
    for day in range(buckets):
        accs = {key: _accumulator(rng, size) for key, size in zip(keys, sizes, strict=True)}
        bank.score(ClosedBucket(int(START) + day * 86400, accs))
    blob = pickle.dumps(bank, protocol=pickle.HIGHEST_PROTOCOL)
    # Measure a fresh unpickled copy: exactly the state a worker holds after a restart, without
    # the garbage that building it left in the allocator.
    gc.collect()
    tracemalloc.start()
    copy = pickle.loads(blob)
    in_memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    n = len(copy.series)
    return len(blob) / n, in_memory / n, n


def report(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    print("\n" + "\n".join(f"  {label:<{width}}  {value}" for label, value in rows), flush=True)


def _rate(n: float, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} events/s"


def run(args: argparse.Namespace, workdir: Path) -> bool:
    """The whole bench; returns whether the worker met the target."""
    tag = f"bench{secrets.token_hex(3)}"
    clock = time.perf_counter()
    events = generate_events(args.events, seed=1, tag=tag)
    singles = generate_events(args.single_events, seed=2, tag=f"{tag}s")
    settings = Settings(topic_prefix=tag, kafka_bootstrap="-", partitions=PARTITIONS)
    batched = encode_batched(events, settings.events_per_record, args.chunk)
    single = encode_single(singles)
    mean_bytes = sum(len(v) for _, v in single) / len(single)
    print(
        f"generated {len(events):,} + {len(singles):,} events (~{mean_bytes:.0f} B each) and "
        f"{len(batched):,} + {len(single):,} records in {time.perf_counter() - clock:.1f}s",
        flush=True,
    )
    del events, singles  # only the encoded records are needed from here on

    with EmbeddedBroker() as broker:
        topics = {
            name: Settings(
                topic_prefix=name, kafka_bootstrap=broker.bootstrap, partitions=PARTITIONS
            )
            for name in (tag, f"{tag}-single")
        }
        for s in topics.values():
            ensure_topics(broker.bootstrap, s)
        load_s = load(broker.bootstrap, topics[tag].events_topic, batched)
        print(f"loaded batched topic: {_rate(args.events, load_s)}", flush=True)
        load(broker.bootstrap, topics[f"{tag}-single"].events_topic, single)
        raw = asyncio.run(raw_consume(broker.bootstrap, topics[tag].events_topic, args.events))
        raw1 = asyncio.run(
            raw_consume(broker.bootstrap, topics[f"{tag}-single"].events_topic, args.single_events)
        )
        print(
            f"raw consume: {_rate(args.events, raw)} batched, "
            f"{_rate(args.single_events, raw1)} one per record",
            flush=True,
        )
        work = measure_worker(broker.bootstrap, tag, args.events, workdir)
        print(f"worker (batched records): {work.events_per_second:,.0f} events/s", flush=True)
        work1 = measure_worker(broker.bootstrap, f"{tag}-single", args.single_events, workdir)
        print(f"worker (one per record): {work1.events_per_second:,.0f} events/s", flush=True)
    pickled, in_memory, series = series_footprint()

    raw_rate, raw1_rate = args.events / raw, args.single_events / raw1
    report(
        [
            ("events (batched topic / single topic)", f"{args.events:,} / {args.single_events:,}"),
            (
                "events per record (batched topic)",
                f"{args.events / len(batched):.1f} (requests of {args.chunk}, packed by org)",
            ),
            ("load rate (kafka-python, batched)", _rate(args.events, load_s)),
            ("raw aiokafka+orjson, batched records", _rate(args.events, raw)),
            ("raw aiokafka+orjson, one event per record", _rate(args.single_events, raw1)),
            (
                "WORKER, batched records",
                f"{work.events_per_second:>12,.0f} events/s  "
                f"({work.events_per_second / raw_rate:.1%} of raw)",
            ),
            (
                "WORKER, one event per record",
                f"{work1.events_per_second:>12,.0f} events/s  "
                f"({work1.events_per_second / raw1_rate:.1%} of raw)",
            ),
            (
                "worker outcomes (batched)",
                ", ".join(f"{k} {v:,.0f}" for k, v in work.outcomes.items()),
            ),
            (
                "worker outcomes (single)",
                ", ".join(f"{k} {v:,.0f}" for k, v in work1.outcomes.items()),
            ),
            (
                "bucket close, mean (batched run)",
                f"{work.bucket_close_mean:.3f} s over {work.buckets_closed:.0f} buckets",
            ),
            ("series watched (batched run)", f"{work.series:,.0f}"),
            (
                "worker RSS ready -> end (peak)",
                f"{work.rss_ready_mib:,.0f} -> {work.rss_end_mib:,.0f} "
                f"MiB ({work.rss_peak_mib:,.0f} MiB)",
            ),
            ("slowest /metrics scrape (batched run)", f"{work.scrape_seconds:.3f} s"),
            (
                "bytes per series, pickled",
                f"{pickled:,.0f} B ({series:,} series, 60 daily buckets)",
            ),
            ("bytes per series, in memory", f"{in_memory:,.0f} B (tracemalloc of unpickled bank)"),
            ("target", f"worker >= {TARGET_EVENTS_PER_SECOND:,} events/s on one process"),
        ]
    )
    return work.events_per_second >= TARGET_EVENTS_PER_SECOND


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    p.add_argument("--events", type=int, default=1_000_000, help="events in the batched topic")
    p.add_argument(
        "--single-events",
        type=int,
        default=200_000,
        help="events in the one-event-per-record topic",
    )
    p.add_argument("--chunk", type=int, default=1000, help="events per simulated API request")
    args = p.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the broker and worker subprocesses are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="qualmon-bench-") as workdir:
            met = run(args, Path(workdir))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"\n  {'target met' if met else 'TARGET MISSED'}; bench wall time "
        f"{time.perf_counter() - started:.0f}s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
