-- The read-only role Grafana's "qualmon store" data source logs in as (GRAFANA_STORE_USER):
-- SELECT on the tables the "Anomalies and inspections" dashboard reads, nothing else. The
-- store's owner may rewrite anomalies, inspections and checkpoints; whoever holds Grafana's
-- password, or edits a panel's SQL, must not.
--
-- Run it as a superuser (or the store's owner, if it may create roles) once qualmon has
-- migrated the store (the first API start), and again after an upgrade whose dashboards read
-- another table; it may run any number of times:
--
--   psql "postgresql://qualmon@HOST:5432/qualmon" -X -v ON_ERROR_STOP=1 \
--     -v reader_password="$(cat grafana_db_password)" -f deploy/postgres/grafana-reader.sql
--
-- deploy/compose.yaml runs it at every `up` (service grafana-store-role).

\if :{?reader_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'reader_password is not set: run psql with -v reader_password=<the password Grafana reads from its grafana_db_password secret>'; END $$;
\endif

SELECT 'CREATE ROLE grafana_reader'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana_reader') \gexec

ALTER ROLE grafana_reader WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  PASSWORD :'reader_password';
-- Should a grant ever reach further (a table readable by PUBLIC), writes are still refused.
ALTER ROLE grafana_reader SET default_transaction_read_only = on;

-- PUBLIC usually holds these two; a hardened database may have revoked them.
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON anomalies, anomaly_feedback, inspections, measures TO grafana_reader;
