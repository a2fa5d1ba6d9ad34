#!/usr/bin/env bash
# Entrypoint of the local Redis image, following the official image's contract
# that testcontainers' redis module relies on: `redis-server [config] [--flag
# value ...]` or bare flags as the command.
set -euo pipefail

if [[ "${1:-}" == -* || "${1:-}" == *.conf ]]; then
	set -- redis-server "$@"
fi
if [[ "${1:-}" != redis-server ]]; then
	exec "$@"
fi

# Without a password Redis's protected mode refuses every non-loopback client,
# and docker's port proxy connects from the bridge address, so the container
# would be unreachable. The official image turns it off the same way.
protected=no
for arg in "$@"; do
	[[ "$arg" == --protected-mode ]] && protected=set
done
if [[ "$protected" == no ]]; then
	set -- "$@" --protected-mode no
fi

mkdir -p /data
chown redis:redis /data
cd /data
exec setpriv --reuid=redis --regid=redis --init-groups -- "$@"
