#!/bin/sh
# Runs once when the PostgreSQL volume is created (docker-entrypoint-initdb.d): a read-only login for Grafana
# that can SELECT every table the trucewatch store creates later (alerts, visits, story_clusters, outbox).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<EOSQL
CREATE ROLE grafana LOGIN PASSWORD '${GRAFANA_PG_PASSWORD:-grafana}';
GRANT CONNECT ON DATABASE "$POSTGRES_DB" TO grafana;
GRANT USAGE ON SCHEMA public TO grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE "$POSTGRES_USER" IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
EOSQL
