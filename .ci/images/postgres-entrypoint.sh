#!/usr/bin/env bash
# Entrypoint of the local PostgreSQL image. It mirrors the contract of the
# official image that testcontainers' postgres module relies on:
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, `postgres -c ...` (or bare
# flags) as the command, /docker-entrypoint-initdb.d scripts, and a temporary
# socket-only server during initialisation so "ready to accept connections"
# is logged twice (the module's wait strategy counts two occurrences).
set -euo pipefail

if [[ "${1:-}" == -* ]]; then
	set -- postgres "$@"
fi
if [[ "${1:-}" != postgres ]]; then
	exec "$@"
fi
shift

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
pg_user="${POSTGRES_USER:-postgres}"
pg_db="${POSTGRES_DB:-$pg_user}"
pg_password="${POSTGRES_PASSWORD:-}"
host_auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

if [[ -z "$pg_password" && "$host_auth" != trust ]]; then
	echo "postgres-entrypoint: POSTGRES_PASSWORD is empty; set it or POSTGRES_HOST_AUTH_METHOD=trust" >&2
	exit 1
fi

# PostgreSQL refuses to run as root.
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 0700 "$PGDATA"

run_init_scripts() {
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[[ -e "$f" ]] || continue
		case "$f" in
		*.sh) echo "postgres-entrypoint: running $f"; bash "$f" ;;
		*.sql) echo "postgres-entrypoint: running $f"; as_postgres psql -v ON_ERROR_STOP=1 -U "$pg_user" -d "$pg_db" -f "$f" ;;
		*.sql.gz) echo "postgres-entrypoint: running $f"; gunzip -c "$f" | as_postgres psql -v ON_ERROR_STOP=1 -U "$pg_user" -d "$pg_db" ;;
		*) echo "postgres-entrypoint: ignoring $f" ;;
		esac
	done
}

initialise() {
	local pwfile
	pwfile="$(mktemp)"
	printf '%s\n' "$pg_password" >"$pwfile"
	chown postgres "$pwfile"
	as_postgres initdb --username="$pg_user" --pwfile="$pwfile" --encoding=UTF8 \
		--locale=C.UTF-8 --auth-local=trust --auth-host="$host_auth" -D "$PGDATA"
	rm -f "$pwfile"
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
	printf '\nhost all all all %s\n' "$host_auth" >>"$PGDATA/pg_hba.conf"

	as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
	if [[ "$pg_db" != postgres ]]; then
		as_postgres psql -v ON_ERROR_STOP=1 -U "$pg_user" -d postgres --set db="$pg_db" <<<'CREATE DATABASE :"db";'
	fi
	run_init_scripts
	as_postgres pg_ctl -D "$PGDATA" -m fast -w stop
	echo "postgres-entrypoint: initialisation complete"
}

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
	initialise
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres "$@"
