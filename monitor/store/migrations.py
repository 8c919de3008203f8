"""The schema, as an append-only list of migrations; the store applies the ones it has not yet.

Written in SQLite's dialect (``REAL``, ``INTEGER``, ``BLOB``); :mod:`monitor.store.database`
maps the types for PostgreSQL. Never edit an applied migration: append a new entry instead, so
every database, old or new, ends with the same schema. ``schema_version`` records the count.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
    CREATE TABLE anomalies (
        anomaly_id TEXT PRIMARY KEY,
        indicator TEXT NOT NULL,
        org TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        bucket_start TEXT NOT NULL,
        bucket_seconds INTEGER NOT NULL,
        value REAL NOT NULL,
        expected REAL NOT NULL,
        lower REAL NOT NULL,
        upper REAL NOT NULL,
        score REAL NOT NULL,
        k REAL NOT NULL,
        n REAL NOT NULL,
        detector TEXT NOT NULL,
        severity TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX anomalies_by_time ON anomalies (bucket_start);
    CREATE INDEX anomalies_by_series ON anomalies (indicator, org, product_line, channel);
    CREATE TABLE indicator_values (
        indicator TEXT NOT NULL,
        org TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        bucket_start INTEGER NOT NULL,
        value REAL NOT NULL,
        k REAL NOT NULL,
        n REAL NOT NULL,
        score REAL NOT NULL,
        expected REAL NOT NULL,
        lower REAL NOT NULL,
        upper REAL NOT NULL,
        PRIMARY KEY (indicator, org, product_line, channel, bucket_start)
    );
    CREATE TABLE seen_events (
        event_id TEXT PRIMARY KEY,
        bucket_start INTEGER NOT NULL
    );
    CREATE INDEX seen_events_by_bucket ON seen_events (bucket_start);
    CREATE TABLE late_events (
        event_id TEXT PRIMARY KEY,
        bucket_start INTEGER NOT NULL,
        body BLOB NOT NULL,
        received_at REAL NOT NULL
    );
    CREATE TABLE checkpoints (
        name TEXT PRIMARY KEY,
        state BLOB NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: alerts, what each grew from, their notifications (an outbox, dead letters included),
    # silences, and the org tree seen in events (for routing and effect-evaluation controls).
    """
    CREATE TABLE alerts (
        alert_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        group_key TEXT NOT NULL,
        indicator TEXT NOT NULL,
        org TEXT NOT NULL,
        org_path TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        severity TEXT NOT NULL,
        score REAL NOT NULL,
        value REAL NOT NULL,
        expected REAL NOT NULL,
        state TEXT NOT NULL,
        anomaly_id TEXT NOT NULL,
        last_bucket INTEGER NOT NULL,
        anomalies INTEGER NOT NULL,
        flaps INTEGER NOT NULL,
        flapping INTEGER NOT NULL,
        summary TEXT NOT NULL,
        acknowledged_by TEXT,
        acknowledged_at REAL,
        inspection_id TEXT,
        opened_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        resolved_at REAL
    );
    CREATE INDEX alerts_by_group ON alerts (group_key, opened_at);
    CREATE INDEX alerts_by_state ON alerts (state);
    CREATE TABLE alert_sources (
        source_id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL,
        indicator TEXT NOT NULL,
        org TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        bucket_start INTEGER NOT NULL
    );
    CREATE INDEX alert_sources_by_alert ON alert_sources (alert_id);
    CREATE TABLE notifications (
        notification_id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL,
        receiver TEXT NOT NULL,
        event TEXT NOT NULL,
        body TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX notifications_due ON notifications (state, next_attempt_at);
    CREATE TABLE silences (
        silence_id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE orgs (
        org TEXT PRIMARY KEY,
        org_path TEXT NOT NULL,
        depth INTEGER NOT NULL
    );
    """,
    # 3: special inspections, root causes, measures, effect evaluations, and the audit log.
    """
    CREATE TABLE inspections (
        inspection_id TEXT PRIMARY KEY,
        cause_id TEXT NOT NULL UNIQUE,
        rule TEXT NOT NULL,
        title TEXT NOT NULL,
        indicator TEXT NOT NULL,
        org TEXT NOT NULL,
        org_path TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        state TEXT NOT NULL,
        reopened INTEGER NOT NULL,
        opened_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        closed_at REAL
    );
    CREATE INDEX inspections_by_state ON inspections (state);
    CREATE TABLE inspection_alerts (
        inspection_id TEXT NOT NULL,
        alert_id TEXT NOT NULL,
        added_at REAL NOT NULL,
        PRIMARY KEY (inspection_id, alert_id)
    );
    CREATE TABLE root_causes (
        cause_id TEXT PRIMARY KEY,
        inspection_id TEXT NOT NULL,
        category TEXT NOT NULL,
        analysis TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE measures (
        measure_id TEXT PRIMARY KEY,
        inspection_id TEXT NOT NULL,
        title TEXT NOT NULL,
        department TEXT NOT NULL,
        owner TEXT NOT NULL,
        deadline REAL NOT NULL,
        effective_from REAL,
        indicator TEXT NOT NULL,
        org TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        target REAL NOT NULL,
        state TEXT NOT NULL,
        overdue_alert_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX measures_by_inspection ON measures (inspection_id);
    CREATE TABLE evaluations (
        evaluation_id TEXT PRIMARY KEY,
        inspection_id TEXT NOT NULL,
        measure_id TEXT NOT NULL,
        verdict TEXT NOT NULL,
        body TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE audit_log (
        audit_id TEXT PRIMARY KEY,
        entity TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        at REAL NOT NULL,
        before TEXT,
        after TEXT
    );
    CREATE INDEX audit_by_entity ON audit_log (entity, entity_id, at);
    """,
    # 4: anomaly categories and their explanation, feedback on anomalies, rolling windows.
    """
    ALTER TABLE anomalies ADD COLUMN category TEXT NOT NULL DEFAULT 'business';
    ALTER TABLE anomalies ADD COLUMN detail TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX anomalies_by_category ON anomalies (category, bucket_start);
    CREATE TABLE anomaly_feedback (
        feedback_id INTEGER PRIMARY KEY,
        anomaly_id TEXT NOT NULL REFERENCES anomalies (anomaly_id),
        verdict TEXT NOT NULL,
        note TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX anomaly_feedback_by_anomaly ON anomaly_feedback (anomaly_id);
    CREATE TABLE indicator_windows (
        org TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        window_name TEXT NOT NULL,
        as_of INTEGER NOT NULL,
        sums BLOB NOT NULL,
        PRIMARY KEY (org, product_line, channel, window_name)
    );
    """,
    # 5: two stages (scale-out). Remembered ids say which input partition they came from, so a
    # worker taking a partition over loads its ids (a scan, only then: an index would cost every
    # insert); partials are the first stage's sums waiting for the second (streams/partial.py),
    # deleted once merged.
    """
    ALTER TABLE seen_events ADD COLUMN source_partition INTEGER;
    CREATE TABLE partials (
        source_partition INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        body BLOB NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (source_partition, seq)
    );
    """,
    # 6: a day judged whole beside hourly buckets is cleared by the next day's verdict, not by
    # an hour: the end of that next day, kept per source (NULL: cleared by a normal bucket).
    """
    ALTER TABLE alert_sources ADD COLUMN clear_after INTEGER;
    """,
    # 7: who gave a verdict on an anomaly (older verdicts: unknown, '').
    """
    ALTER TABLE anomaly_feedback ADD COLUMN actor TEXT NOT NULL DEFAULT '';
    """,
    # 8: each source's reading, so an alert renamed to one of its member slices shows that
    # slice's latest reading, also one the launch watch raised and never stored as an anomaly
    # (older sources: NULL, the reading shown stays).
    """
    ALTER TABLE alert_sources ADD COLUMN value REAL;
    ALTER TABLE alert_sources ADD COLUMN expected REAL;
    """,
    # 9: the episode a source belongs to (the alert's flap count when it joined), so an alert
    # that fires again is named, read and resolved by its new episode's slices alone. Older
    # sources join their alert's current episode: what they meant before. And whether a source
    # is a company slice anomalous beyond any one region (alerting.breadth): the alert is then
    # named after it, not after a branch (NULL: not judged, as older sources were not).
    """
    ALTER TABLE alert_sources ADD COLUMN episode INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE alert_sources ADD COLUMN broad INTEGER;
    UPDATE alert_sources SET episode = COALESCE(
        (SELECT flaps FROM alerts WHERE alerts.alert_id = alert_sources.alert_id), 0);
    """,
]
