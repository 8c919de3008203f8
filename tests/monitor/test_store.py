"""The history store on SQLite and on PostgreSQL (a fresh database per test when reachable)."""

from __future__ import annotations

import pytest

from monitor.errors import ClosingTakenOver, ConfigError, PartitionTakenOver
from monitor.store import MIGRATIONS, Store, open_store
from monitor.store.alerts import ALERT_COLUMNS
from monitor.store.partials import PartitionState

ANOMALY = {
    "anomaly_id": "a1",
    "indicator": "complaint_rate_per_10k_policies",
    "org": "4403",
    "product_line": "life",
    "channel": "BANCA",
    "bucket_start": "2026-03-02T16:00:00+00:00",
    "bucket_seconds": 86400,
    "value": 12.5,
    "expected": 1.0,
    "lower": 0.0,
    "upper": 3.0,
    "score": 1.0,
    "k": 9.0,
    "n": 7200.0,
    "detector": "CountDetector",
    "severity": "critical",
}
READING = (
    "complaint_rate_per_10k_policies",
    "4403",
    "life",
    "BANCA",
    1_772_467_200,
    12.5,
    9.0,
    7200.0,
    1.0,
    1.0,
    0.0,
    3.0,
)


def test_migrations_apply_once_and_reopening_changes_nothing(store: Store, store_url: str) -> None:
    assert store.migrate() == len(MIGRATIONS)
    again = open_store(store_url)
    try:
        assert again.migrate() == len(MIGRATIONS)
        rows = again.db.query("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
    finally:
        again.close()


def test_sources_recorded_before_episodes_stay_members_of_their_alert(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 9 puts an alert's existing sources in its current episode, so an alert that
    fired again before the upgrade keeps its members (and can still resolve)."""
    alert = dict.fromkeys(ALERT_COLUMNS, "x") | {
        "alert_id": "al1",
        **dict.fromkeys(("score", "value", "expected", "opened_at", "updated_at"), 1.0),
        **dict.fromkeys(("last_bucket", "anomalies", "flapping"), 1),
        **dict.fromkeys(("acknowledged_by", "acknowledged_at", "inspection_id"), None),
        "resolved_at": None,
        "flaps": 2,
    }
    monkeypatch.setattr("monitor.store.MIGRATIONS", MIGRATIONS[:8])
    before = open_store(store_url)
    try:
        with before.db.transaction() as tx:
            before.insert_alert(tx, alert)
            tx.execute(
                "INSERT INTO alert_sources (source_id, alert_id, indicator, org, product_line, "
                "channel, bucket_start) VALUES ('s1', 'al1', 'x', '4403', 'life', 'BANCA', 1)"
            )
    finally:
        before.close()
    monkeypatch.undo()
    after = open_store(store_url)
    try:
        with after.db.transaction() as tx:
            assert after.alert_members(tx, [alert]) == {
                "al1": [(("4403", "life", "BANCA"), None, 0, 1)]
            }
            assert len(after.alert_sources(tx, alert)) == 1
            assert after.alert_members(tx, [alert | {"flaps": 3}]) == {}
    finally:
        after.close()


def test_a_checkpoint_round_trips_and_a_redelivered_one_writes_nothing_new(store: Store) -> None:
    store.save_intake(
        "w",
        partials=[(0, 1, b"p1"), (1, 1, b"q1")],
        states={
            0: (PartitionState(), PartitionState(1, 25.0, 7)),
            1: (PartitionState(), PartitionState(1, float("-inf"), 3)),
        },
        new_ids=[("e1", 10, 0), ("e2", 20, 1)],
    )
    for _ in range(2):  # the closer's checkpoint, written again after a crash
        store.save_checkpoint(
            "w",
            b"\x00state\xff",
            merged={0: 1},
            closed_through=30,
            forget_before=15,
            readings=[READING],
            anomalies=[ANOMALY],
            late=[("e3", 5, b"{}")],
        )
    assert store.load_checkpoint("w") == (b"\x00state\xff", None)
    assert store.closed_through("w") == 30.0
    loaded = store.load_partitions("w", [0, 1, 2])
    assert {p: (s.seq, s.latest, s.offset, ids) for p, (s, ids) in loaded.items()} == {
        0: (1, 25.0, 7, {}),
        1: (1, float("-inf"), 3, {"e2": 20}),  # e1's bucket is before forget_before
        2: (0, float("-inf"), -1, {}),  # never seen
    }
    # The next write must name what it replaces: another worker's write in between fails it.
    state_0 = loaded[0][0]
    store.save_intake("w", states={0: (state_0, PartitionState(2, 26.0, 9))})
    with pytest.raises(PartitionTakenOver, match="partition 0 of 'w'"):
        store.save_intake("w", partials=[(0, 2, b"p2")],
                          states={0: (state_0, PartitionState(2, 27.0, 9))})  # fmt: skip
    assert store.pending_partials({}) == [(1, 1, b"q1")]  # partial 2 was not written
    assert store.pending_partials({0: 1}) == [(1, 1, b"q1")]  # partition 0's was merged
    assert store.count("anomalies") == 1 and store.count("indicator_values") == 1
    assert store.count("late_events") == 1
    # Written without the columns added later, it reads back with their defaults.
    stored = {**ANOMALY, "category": "business", "detail": "{}"}
    assert store.anomaly("a1") == stored
    rows, total = store.anomalies(org="4403", since="2026-03-02T00:00:00+00:00")
    assert (total, rows) == (1, [stored])
    assert store.anomalies(org="4401")[1] == 0
    latest = store.latest_readings(indicator="complaint_rate_per_10k_policies")
    assert [(r["org"], r["value"], r["bucket_start"]) for r in latest] == [
        ("4403", 12.5, 1_772_467_200)
    ]


def test_history_selects_one_series_window(store: Store) -> None:
    rows = [
        ("loss_ratio", org, "*", "*", 1000 + 100 * i, float(i), 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)
        for org in ("01", "02")
        for i in range(5)
    ]
    store.add_readings(rows)
    store.add_readings(rows)  # idempotent
    got = store.history("loss_ratio", "*", "*", 1100, 1300)
    assert [(r["org"], r["bucket_start"], r["value"]) for r in got] == [
        ("01", 1100, 1.0),
        ("01", 1200, 2.0),
        ("02", 1100, 1.0),
        ("02", 1200, 2.0),
    ]
    assert [r["org"] for r in store.history("loss_ratio", "*", "*", 0, 9999, org="02")] == [
        "02"
    ] * 5


def test_org_tree_is_upserted(store: Store) -> None:
    store.add_orgs(["00", "00/44", "00/44/4403"])
    store.add_orgs(["00/44/4403"])
    assert store.org_paths() == {"00": "00", "44": "00/44", "4403": "00/44/4403"}


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/q", "sqlite://relative.db", "postgresql://u:secret@nohost:1/x"]
)
def test_unusable_database_urls_are_refused_by_name(url: str) -> None:
    with pytest.raises(ConfigError, match="QUALMON_DATABASE_URL") as caught:
        open_store(url)
    assert "secret" not in str(caught.value)


def test_a_later_claim_fences_off_an_earlier_closer(store: Store) -> None:
    first, second = store.claim_closing("w"), store.claim_closing("w")
    assert second == first + 1
    with pytest.raises(ClosingTakenOver):
        store.save_checkpoint("w", b"old", epoch=first, readings=[READING])
    assert store.load_checkpoint("w") == (None, None) and store.count("indicator_values") == 0
    store.save_checkpoint("w", b"new", detectors=b"d1", epoch=second, readings=[READING])
    store.save_checkpoint("w", b"newer", epoch=second)  # detectors unchanged: not written
    assert store.load_checkpoint("w") == (b"newer", b"d1")
