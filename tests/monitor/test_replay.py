"""``qualmon replay``: recorded events checked whole, then sent in event-time order."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import orjson
import pytest

from monitor.replay import add_arguments, hours, read_events, run
from monitor.settings import Settings
from streams.checks import ReceivingClock
from tests.conftest import wait_until
from tests.factories import at, call, hotline_hours


def _args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(flags))


def _lines(*items: object) -> list[str]:
    return [orjson.dumps(item).decode() for item in items]


def test_a_bad_line_is_named_by_line_item_and_field() -> None:
    good = call("e-1", at(1), True)
    with pytest.raises(ValueError, match=r"^line 2: not JSON"):
        read_events([*_lines(good), "{oops"])
    bad = call("e-2", at(1), True, wait=-1.0)
    with pytest.raises(
        ValueError, match=r"^line 3, item 1: payload\.wait_seconds: .*\(value -1\.0\)"
    ):
        read_events([*_lines(good), "", *_lines([good, bad])])
    with pytest.raises(ValueError, match=r"^line 1: expected an event \(a JSON object\), got 7"):
        read_events(_lines(7))


def test_events_go_out_by_event_time_an_hour_at_a_time() -> None:
    late, early, later = (
        call("c", at(3.5), True),
        call("a", at(0.2), True),
        call("b", at(0.7), True),
    )
    events = read_events(_lines(late, [early, later]))
    paced = [[e["event_id"] for e in batch] for batch in hours(events, paced=True)]
    assert paced == [["a", "b"], [], [], ["c"]]  # the pacing follows event time
    assert [[e["event_id"] for e in batch] for batch in hours(events)] == [["a", "b"], ["c"]]


def test_an_event_dated_past_what_the_service_takes_is_refused_before_any_is_sent() -> None:
    clock = ReceivingClock.at(1_772_409_600, allowed_lateness_seconds=3600)  # at(0) + 8 h
    ahead = call("far", "2099-01-01T00:00:00+08:00", True)
    with pytest.raises(ValueError, match=r"^line 2: event_time: Input should be at most 3600 s"):
        read_events(_lines(call("e-1", at(1), True), ahead), clock)


def test_a_file_with_a_bad_event_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(_lines(call("e-1", at(1), True), {"event_id": "e-2"})))
    # Nothing listens on the URL: a file refused before sending never gets that far.
    assert run(_args("--input", str(source), "--url", "http://127.0.0.1:9"), Settings()) == 2
    err = capsys.readouterr().err
    assert "line 2: event_type" in err and "nothing was sent" in err


@pytest.mark.broker
def test_an_export_replayed_through_the_api_is_counted_whole(service_factory, tmp_path) -> None:
    # Two source systems exported one after the other, as a file usually comes.
    service = service_factory().start()
    first = hotline_hours(range(0, 6), calls=5, answered=5, prefix="cti-a")
    second = hotline_hours(range(0, 6), calls=5, answered=4, prefix="cti-b",
                           org_path="00/31/3101")  # fmt: skip
    source = tmp_path / "export.jsonl"
    source.write_text("\n".join(_lines(*first, second)) + "\n")
    out = io.StringIO()
    settings = Settings(http_port=service.port)
    assert run(_args("--input", str(source)), settings, out=out) == 0
    total = len(first) + len(second)
    assert out.getvalue() == f"{total} events sent\n"

    def counted() -> float:
        return service.metric("qualmon_events_total", event_type="call.completed")

    wait_until(lambda: counted() == total, 60, f"{total} events counted")
    assert service.metric("qualmon_events_total", outcome="accepted") == total
    assert service.metric("qualmon_events_total", outcome="late") == 0


def test_stdin_is_read_with_a_dash(capsys: pytest.CaptureFixture[str]) -> None:
    stdin = io.StringIO("\n".join(_lines({"event_id": "x", "event_type": "nope"})))
    assert run(_args("--input", "-"), Settings(), stdin=stdin) == 2
    assert "line 1: event_type" in capsys.readouterr().err
