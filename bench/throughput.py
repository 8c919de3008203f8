"""Worker throughput beside a raw consume loop, on the embedded broker; bytes per watched series.

Events are generated and encoded before anything is timed. The worker is the real ``qualmon run``
subprocess. Its progress is read from the offsets its consumer group commits, which it does only
once a checkpoint covers the records: so "done" means counted *and* durable, and the bench never
scrapes ``/metrics`` while timing (a scrape runs on the worker's event loop and slows it down).
The rate is taken between the first and the last commit, which leaves out start-up and cancels
the commit delay (a checkpoint every 2 s, a commit every ~3 s) at both ends.

Two shapes of the same mix of events, both measured:

* **live** — a real-time feed: the events span two days of event time, as a day's traffic does
  at these rates (20,000 events/s is 1.7 billion a day), so a bucket closes rarely. The target is
  judged on this one.
* **replay** — a backfill: the same number of events spread over 30 days, so a daily bucket of
  ~12,000 slices closes every ~34,000 events and scoring the closes is a large share of the work.

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
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient
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

TARGET = 20_000  # events/s, one worker process
PARTITIONS = 4
START = datetime(2026, 3, 2, tzinfo=SHANGHAI).timestamp()
LIVE_DAYS, REPLAY_DAYS = 2, 30
DEADLINE, STALL = 15 * 60, 120  # seconds: the whole measurement; without any progress
OUTCOME = "qualmon_events_total:"  # + accepted, late, duplicate, invalid
Done = dict[int, list[int]]  # partition -> events in the records before each offset

# 10 provinces × 5 branches under head office "00", of skewed sizes as real branch networks are.
PROVINCES = ("11", "31", "32", "33", "35", "37", "42", "44", "51", "61")
ORGS = [(f"{p}{b:02d}", f"00/{p}/{p}{b:02d}") for p in PROVINCES for b in range(1, 6)]
ORG_WEIGHTS = [1 / (i + 1) ** 0.6 for i in range(len(ORGS))]
LINES = ("life", "health", "accident", "annuity", "universal")
CHANNELS = ("AGENCY", "BANCA", "TELE", "ONLINE", "GROUP", "BROKER")
# Share of each event type: calls and premiums dominate, complaints and cancellations are rare.
MIX = {"call.completed": 30, "premium.received": 22, "policy.issued": 15,
       "claim.reported": 7, "claim.closed": 7, "survey.response": 5, "complaint.received": 3,
       "complaint.closed": 2.5, "inspection.sample": 2, "policy.surrendered": 2,
       "policy.cooling_off_cancel": 1.5}  # fmt: skip


class BenchError(Exception):
    """The harness could not measure (not: the worker was slow)."""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, SHANGHAI).isoformat(timespec="seconds")


def _money(r: Random, mu: float) -> str:
    return f"{r.lognormvariate(mu, 0.8):.2f}"


def _payload(kind: str, r: Random, t: float, i: int) -> dict[str, Any]:
    if kind == "call.completed":
        wait = round(r.expovariate(1 / 15), 1)
        return dict(queue="95500", answered=r.random() < 0.93, wait_seconds=wait)
    if kind == "premium.received":
        renewal = r.random() < 0.6
        period = r.randint(2, 20) if renewal else 1
        kind_ = "RENEWAL" if renewal else "FIRST"
        return dict(premium=_money(r, 8), premium_type=kind_, period_no=period)
    if kind == "policy.issued":
        return dict(premium=_money(r, 8.5), pay_mode=r.choice(("REGULAR", "REGULAR", "SINGLE")))
    if kind == "claim.reported":
        return dict(claim_id=f"C{i}", claimed_amount=_money(r, 9))
    if kind == "claim.closed":  # reported up to 20 days before it closes
        reported = _iso(t - r.uniform(3600, 20 * 86400))
        decision = r.choice(("PAID", "PAID", "PARTIAL", "DECLINED"))
        return dict(claim_id=f"C{i}", decision=decision, paid_amount=_money(r, 8.8),
                    reported_at=reported)  # fmt: skip
    if kind == "survey.response":
        return dict(touchpoint="claim", csat_1_5=r.randint(1, 5))
    if kind == "complaint.received":
        source = "REGULATOR" if r.random() < 0.2 else "OWN"
        return dict(complaint_id=f"Q{i}", source=source, category=r.choice(("SALES", "SERVICE")))
    if kind == "complaint.closed":
        received = _iso(t - r.uniform(86400, 9 * 86400))
        return dict(complaint_id=f"Q{i}", received_at=received, outcome="REJECTED")
    if kind == "inspection.sample":
        return dict(object_type="policy", compliant=r.random() < 0.95)
    if kind == "policy.surrendered":
        return dict(surrender_amount=_money(r, 9), policy_year=r.randint(1, 20))
    return dict(refund=_money(r, 8), days_since_effective=r.randint(0, 15))  # cooling-off


def generate_events(n: int, seed: int, tag: str, days: int) -> list[dict[str, Any]]:
    """``n`` valid events over ``days`` days, in time order up to ten minutes of jitter."""
    rng = Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=n)
    orgs = rng.choices(ORGS, weights=ORG_WEIGHTS, k=n)
    lines, channels = rng.choices(LINES, k=n), rng.choices(CHANNELS, k=n)
    events = []
    for i in range(n):
        t = START + i * days * 86400 / n + rng.random() * 600
        (org, path), line = orgs[i], lines[i]
        events.append(dict(
            event_id=f"{tag}-{i}", event_type=kinds[i], event_time=_iso(t), org_code=org,
            org_path=path, product_line=line, product_code=f"{line[:2].upper()}{i % 7}",
            channel=channels[i], payload=_payload(kinds[i], rng, t, i),
        ))  # fmt: skip
    # A sample keeps generation fast; the worker's 'invalid' count then checks every event.
    for event in events[:: max(1, n // 3000)]:
        parse_event(event)
    return events


def encode_batched(events: list[dict[str, Any]], per_record: int, chunk: int) -> list[Any]:
    """Records as the API writes them: one request of ``chunk`` events at a time, packed by org."""
    return [
        r for i in range(0, len(events), chunk) for r in pack(events[i : i + chunk], per_record)
    ]


def encode_single(events: list[dict[str, Any]]) -> list[Any]:
    """One record per event, as a plain producer that does not batch would write them."""
    return [(e["org_code"].encode(), orjson.dumps(e)) for e in events]


async def load(bootstrap: str, topic: str, records: list[Any]) -> tuple[float, Done]:
    """Produce every record; returns the seconds taken and the events before each offset."""
    # aiokafka, not kafka-python: kafka-python 3 checksums record batches in pure Python and
    # loaded ~20x slower here (14k events/s), which would make loading the slowest step.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20,
        max_request_size=16 << 20, enable_idempotence=False, acks=1,
    )  # fmt: skip
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        sent = await asyncio.gather(*futures)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    done: Done = {}
    for meta, (_, value) in sorted(zip(sent, records, strict=True), key=lambda x: x[0][:3]):
        before = done.setdefault(meta.partition, [0])
        if meta.offset != len(before) - 1:  # a fresh topic's offsets run 0, 1, 2, ...
            raise BenchError(f"{topic}[{meta.partition}] got offset {meta.offset}, "
                             f"expected {len(before) - 1}")  # fmt: skip
        data = orjson.loads(value)
        before.append(before[-1] + (len(data) if isinstance(data, list) else 1))
    return seconds, done


def events_done(done: Done, committed: dict[int, int]) -> int:
    """Events in the records below the committed offsets (-1: nothing committed yet)."""
    return sum(done[p][min(o, len(done[p]) - 1)] for p, o in committed.items() if o >= 0)


async def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    """The floor: fetch and decode every record, nothing else; returns seconds to read all."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        count, started = 0, time.perf_counter()
        while count < expected:
            if time.perf_counter() - started > DEADLINE:
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
    steady: float  # events/s between the first and the last commit
    # events/s from /readyz to the last commit: start-up and commit delay included
    from_ready: float
    metrics: dict[str, float]  # the final /metrics, summed over labels except the outcome
    cpu_us_per_event: float  # worker CPU time, which other load on the machine does not inflate
    rss_ready_mib: float
    rss_end_mib: float


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _scrape(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=60).text):
        for s in family.samples:
            # Events are summed per outcome, everything else over all its labels.
            name = OUTCOME + s.labels["outcome"] if s.name == "qualmon_events_total" else s.name
            out[name] = out.get(name, 0.0) + s.value
    return out


@contextlib.contextmanager
def worker_process(bootstrap: str, prefix: str, workdir: Path) -> Iterator[tuple[Any, str]]:
    """A ``qualmon run`` subprocess on its own app id, data dir and port; stopped on exit."""
    port = free_port()
    env = {**os.environ, "QUALMON_KAFKA_BOOTSTRAP": bootstrap, "QUALMON_TOPIC_PREFIX": prefix,
           "QUALMON_APP_ID": f"{prefix}-worker", "QUALMON_DATA_DIR": str(workdir / prefix),
           "QUALMON_HTTP_PORT": str(port), "QUALMON_LOG_LEVEL": "info",
           "QUALMON_BUCKET_SECONDS": "86400", "QUALMON_PARTITIONS": str(PARTITIONS)}  # fmt: skip
    log_path = workdir / f"{prefix}.log"
    with open(log_path, "wb") as log:
        command = [sys.executable, "-m", "monitor.cli", "run"]
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
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


def _wait_ready(url: str, proc: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"worker exited with status {proc.returncode} before /readyz")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=10).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"worker not ready at {url}/readyz within {timeout:.0f}s")


def _committed(admin: KafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    offsets = admin.list_group_offsets({group: None}).get(group, {})
    return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}


def _follow_commits(
    proc: Any, admin: KafkaAdminClient, prefix: str, done: Done, expected: int
) -> list[tuple[float, int]]:
    """(when, events committed) at every change, from now until all ``expected`` are."""
    steps = [(time.perf_counter(), 0)]
    while steps[-1][1] < expected:
        now = time.perf_counter()
        if proc.poll() is not None or now - steps[0][0] > DEADLINE or now - steps[-1][0] > STALL:
            raise BenchError(f"worker committed {steps[-1][1]} of {expected} events in "
                             f"{now - steps[0][0]:.0f}s (exit status {proc.poll()})")  # fmt: skip
        time.sleep(0.25)
        n = events_done(done, _committed(admin, f"{prefix}-worker", f"{prefix}.events"))
        if n != steps[-1][1]:
            steps.append((time.perf_counter(), n))
    return steps


def measure_worker(bootstrap: str, prefix: str, done: Done, workdir: Path) -> WorkerRun:
    expected = sum(before[-1] for before in done.values())
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="qualmon-bench")
    with contextlib.closing(admin), worker_process(bootstrap, prefix, workdir) as (proc, url):
        _wait_ready(url, proc)
        rss_ready, cpu_ready = _rss_mib(proc.pid), _cpu_seconds(proc.pid)
        steps = _follow_commits(proc, admin, prefix, done, expected)
        metrics = _scrape(url)
        counted = sum(v for k, v in metrics.items() if k.startswith(OUTCOME))
        if counted != expected:
            raise BenchError(f"worker committed every record but counted {counted:.0f} of "
                             f"{expected} events")  # fmt: skip
        (ready, _), (t1, n1), (t2, n2) = steps[0], steps[1], steps[-1]
        return WorkerRun(
            steady=(n2 - n1) / (t2 - t1) if t2 > t1 else float("nan"),
            from_ready=expected / (t2 - ready),
            metrics=metrics,
            cpu_us_per_event=(_cpu_seconds(proc.pid) - cpu_ready) / expected * 1e6,
            rss_ready_mib=rss_ready,
            rss_end_mib=_rss_mib(proc.pid),
        )


def _accumulator(r: Random, size: float) -> list[float]:
    """One slice-day of sums, proportional to the slice's size, with some noise."""
    acc, f = new_accumulator(), FIELD
    calls = max(1.0, round(r.gauss(120 * size, 3 * size**0.5)))
    acc[f["calls"]], acc[f["calls_answered"]] = calls, round(calls * r.uniform(0.9, 0.96))
    policies = max(1.0, round(r.gauss(40 * size, 2 * size**0.5)))
    acc[f["policies_issued"]], acc[f["written_premium_yuan"]] = policies, policies * 6000
    acc[f["premium_receipts"]] = receipts = max(1.0, round(r.gauss(90 * size, 3 * size**0.5)))
    acc[f["premium_received_yuan"]] = receipts * r.uniform(2500, 3500)
    acc[f["complaints"]] = r.randrange(0, 3 + int(size))
    acc[f["cooling_off_cancels"]] = r.randrange(0, 2 + int(size))
    acc[f["claims_closed"]] = closed = r.randrange(1, 5 + int(20 * size))
    acc[f["claims_paid_yuan"]] = closed * 7000
    acc[f["settlement_days_sum"]] = closed * r.uniform(3, 9)
    return acc


def series_footprint(slices: int = 2000, days: int = 60) -> tuple[float, float, int]:
    """(pickled bytes, in-memory bytes, series) per watched series after ``days`` closed buckets."""
    rng = Random(7)
    keys = [(org, line, ch) for org, _ in ORGS for line in (*LINES, "*") for ch in (*CHANNELS, "*")]
    keys = rng.sample(keys, min(slices, len(keys)))
    sizes = [rng.lognormvariate(0, 1) for _ in keys]
    bank = SeriesBank(86400)
    for day in range(days):
        accs = {key: _accumulator(rng, size) for key, size in zip(keys, sizes, strict=True)}
        bank.score(ClosedBucket(int(START) + day * 86400, accs))
    blob = pickle.dumps(bank, protocol=pickle.HIGHEST_PROTOCOL)
    # Measured on a fresh unpickled copy: the state a worker holds after a restart, without the
    # garbage that building it left behind.
    gc.collect()
    tracemalloc.start()
    copy = pickle.loads(blob)
    in_memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return len(blob) / len(copy.series), in_memory / len(copy.series), len(copy.series)


def _rate(events: float, seconds: float) -> str:
    return f"{events / seconds:>9,.0f} events/s"


def _worker_rows(run: WorkerRun, raw_rate: float) -> list[tuple[str, str]]:
    m = run.metrics
    closes = m.get("qualmon_bucket_close_seconds_count", 0.0)
    outcomes = ", ".join(f"{k.removeprefix(OUTCOME)} {v:,.0f}" for k, v in m.items()
                         if k.startswith(OUTCOME) and v)  # fmt: skip
    close_mean = m.get("qualmon_bucket_close_seconds_sum", 0.0) / max(closes, 1)
    return [
        ("  WORKER", f"{run.steady:,.0f} events/s  ({run.steady / raw_rate:.0%} of raw;"
                     f" {run.from_ready:,.0f}/s from /readyz)"),
        ("  outcomes", outcomes),
        ("  bucket close, mean", f"{close_mean:.3f} s over {closes:.0f} buckets"),
        ("  series watched", f"{m.get('qualmon_series_watched', 0):,.0f}"),
        ("  worker CPU per event", f"{run.cpu_us_per_event:.0f} µs (user + system)"),
        ("  worker RSS at ready -> end", f"{run.rss_ready_mib:,.0f} -> {run.rss_end_mib:,.0f} MiB"),
    ]  # fmt: skip


def run(args: argparse.Namespace, workdir: Path) -> bool:
    """The whole bench; returns whether the worker met the target."""
    tag, clock = f"bench{secrets.token_hex(3)}", time.perf_counter()
    per_record = Settings().events_per_record  # what the API would use here
    n, n1 = args.events, args.single_events
    # (topic prefix, records, events, what they are)
    shapes = [
        (f"{tag}-live", encode_batched(generate_events(n, 1, f"{tag}l", LIVE_DAYS), per_record,
                                       args.chunk), n, f"live, batched ({LIVE_DAYS} days)"),
        (f"{tag}-replay", encode_batched(generate_events(n, 3, f"{tag}r", REPLAY_DAYS),
                                         per_record, args.chunk), n,
         f"replay, batched ({REPLAY_DAYS} days)"),
        (f"{tag}-single", encode_single(generate_events(n1, 2, f"{tag}s", LIVE_DAYS)), n1,
         f"live, one event per record ({LIVE_DAYS} days)"),
    ]  # fmt: skip
    print(f"generated and encoded {2 * n + n1:,} events in {time.perf_counter() - clock:.0f}s",
          flush=True)  # fmt: skip
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, str]] = []
    live_rate = 0.0
    with EmbeddedBroker() as broker:
        boot = broker.bootstrap
        for prefix, records, events, label in shapes:
            ensure_topics(boot, Settings(topic_prefix=prefix, kafka_bootstrap=boot,
                                         partitions=PARTITIONS))  # fmt: skip
            load_s, done = asyncio.run(load(boot, f"{prefix}.events", records))
            raw = asyncio.run(raw_consume(boot, f"{prefix}.events", events))
            work = measure_worker(boot, prefix, done, workdir)
            print(f"{label}: raw {_rate(events, raw)}, worker {work.steady:,.0f} events/s",
                  flush=True)  # fmt: skip
            live_rate = live_rate or work.steady
            rows += [
                (f"{label}", f"{events:,} events in {len(records):,} records "
                             f"({events / len(records):.1f} per record)"),
                ("  load rate (aiokafka producer)", _rate(events, load_s)),
                ("  raw consume + decode", _rate(events, raw)),
                *_worker_rows(work, events / raw),
            ]  # fmt: skip
    pickled, in_memory, series = series_footprint()
    rows += [
        ("bytes per series, pickled", f"{pickled:,.0f} B ({series:,} series, 60 daily buckets)"),
        ("bytes per series, in memory", f"{in_memory:,.0f} B (tracemalloc, unpickled bank)"),
        # Other processes on the machine take CPU from the worker: say so beside its numbers.
        ("machine load, 1-min average", f"{load_before:.2f} at start, {os.getloadavg()[0]:.2f} "
                                        f"at end ({os.cpu_count()} CPUs)"),
        ("target", f"worker >= {TARGET:,} events/s (live, batched records, one process)"),
    ]  # fmt: skip
    width = max(len(label) for label, _ in rows)
    print("\n" + "\n".join(f"  {label:<{width}}  {value}" for label, value in rows))
    return live_rate >= TARGET


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    p.add_argument("--events", type=int, default=1_000_000, help="events, packed into records")
    p.add_argument("--single-events", type=int, default=200_000, help="events, one per record")
    p.add_argument("--chunk", type=int, default=1000, help="events per simulated API request")
    args = p.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so that the broker and the worker subprocess are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="qualmon-bench-") as workdir:
            met = run(args, Path(workdir))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    verdict = "target met" if met else "TARGET MISSED"
    print(f"\n  {verdict}; bench wall time {time.perf_counter() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
