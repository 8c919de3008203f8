"""``qualmon replay``: recorded events — a backfill, an export from a source system, a day kept
for an investigation — sent over HTTP or into Kafka as ``qualmon simulate`` sends its own.

The input is JSON lines: one event, or an array of events, per line (``-`` reads standard
input). Every event is checked against the contract before the first is sent, so a file with a
bad line changes nothing; the error names the line, the item and the field. Events go out in
event-time order (a stable sort: the file's order among equal times), an hour of event time at a
time, paced at ``--speed`` event-time seconds per second (default: no pacing). Sorting matters:
the worker counts an event as late once the latest event time seen has passed its bucket's end
by the allowed lateness, and a file grouped by source system would otherwise make most of it
late. A replay stopped half-way can simply be run again: event ids de-duplicate what was
already accepted.

>>> events = read_events(['{"event_id": "e-1", "event_type": "call.completed",'
...     ' "event_time": "2026-03-02T10:00:00+08:00", "org_code": "4403", "product_line": "life",'
...     ' "channel": "TELE", "payload": {"queue": "q", "answered": true, "wait_seconds": 3}}'])
>>> [len(hour) for hour in hours(events)]
[1]
>>> [len(hour) for hour in hours(events + [(events[0][0] + 7200, {})], paced=True)]
[1, 0, 1]
>>> read_events(['{"event_id": "e-2"}'])
Traceback (most recent call last):
...
ValueError: line 1: event_type: Unable to extract tag using discriminator 'event_type' (value None)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import orjson
from pydantic import ValidationError

from monitor.settings import Settings
from monitor.simulate import SendError, add_delivery_arguments, check_delivery, deliver
from monitor.simulator import Event
from streams.checks import ReceivingClock
from streams.decode import describe_errors
from streams.schema import event_time_epoch, parse_event

HOUR = 3600


def read_events(
    lines: Iterable[str], clock: ReceivingClock | None = None
) -> list[tuple[float, Event]]:
    """(event time, event) of every event in ``lines``, in the order read; raises ValueError
    naming the first line that is not a valid event or array of events. With a ``clock``, an
    event dated further ahead than the service would take is refused here, before any is sent."""
    out: list[tuple[float, Event]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON: {exc}") from None
        items = data if isinstance(data, list) else [data]
        for index, item in enumerate(items):
            where = f"line {number}" + (f", item {index}" if isinstance(data, list) else "")
            if not isinstance(item, dict):
                raise ValueError(f"{where}: expected an event (a JSON object), got {item!r:.80}")
            try:
                event = parse_event(item, clock)
            except ValidationError as exc:
                first = describe_errors(exc)[0]
                raise ValueError(
                    f"{where}: {first['field']}: {first['expected']} (value {first['value']!r})"
                ) from None
            out.append((event_time_epoch(event), item))
    return out


def hours(events: list[tuple[float, Event]], paced: bool = False) -> Iterator[list[Event]]:
    """The events in event-time order, one list per hour with events; when ``paced``, one per
    hour from the first event's on (empty for hours without events, so pacing follows event
    time)."""
    by_hour: dict[int, list[Event]] = {}
    for when, event in sorted(events, key=lambda pair: pair[0]):
        by_hour.setdefault(int(when // HOUR), []).append(event)
    if not paced:
        yield from by_hour.values()
    elif by_hour:
        yield from (by_hour.get(h, []) for h in range(min(by_hour), max(by_hour) + 1))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        required=True,
        help="JSON lines: an event or an array of events per line; - for stdin",
    )
    add_delivery_arguments(parser, speed=0.0, speed_help="default: as fast as accepted")


def run(
    args: argparse.Namespace,
    settings: Settings,
    out: TextIO = sys.stdout,
    stdin: TextIO = sys.stdin,
) -> int:
    """Read and check every event, then send them; print how many went out."""
    problem = check_delivery(args, settings, "replay")
    if problem:
        print(f"qualmon replay: {problem}", file=sys.stderr)
        return 2
    clock = ReceivingClock.at(time.time(), settings.allowed_lateness_seconds)
    try:
        if args.input == "-":
            events = read_events(stdin, clock)
        else:
            with Path(args.input).open(encoding="utf-8") as source:
                events = read_events(source, clock)
    except (ValueError, OSError) as exc:
        print(f"qualmon replay: {args.input}: {exc}; nothing was sent", file=sys.stderr)
        return 2
    try:
        sent = deliver(args, settings, hours(events, paced=args.speed > 0))
    except SendError as exc:
        print(f"qualmon replay: {exc}", file=sys.stderr)
        return 1
    print(f"{sent:,} events sent", file=out)
    return 0
