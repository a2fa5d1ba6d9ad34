#!/usr/bin/env bash
# Measures what a newcomer waits: a fresh clone of this repository, with
# empty Go module and build caches, until `go run ./cmd/replyrocket dev`
# answers on /health/db. Not part of CI (it downloads every module and
# compiles everything: minutes of two cores); run it once on a quiet machine.
#   bash .ci/measure-fresh-clone.sh [scratch-dir]
set -euo pipefail
src="$(git -C "$(dirname "${BASH_SOURCE[0]}")/.." rev-parse --show-toplevel)"
scratch="${1:-$(mktemp -d /tmp/fresh-clone.XXXXXX)}"
port="${PORT:-18612}"
rm -rf "$scratch/repo" "$scratch/mod" "$scratch/cache"
git clone -q "$src" "$scratch/repo"
cd "$scratch/repo"
export GOMODCACHE="$scratch/mod" GOCACHE="$scratch/cache" GOFLAGS="-modcacherw" PORT="$port"
unset DATABASE_URL ADMIN_API_KEY REDIS_URL
start=$(date +%s.%N)
setsid go run ./cmd/replyrocket dev >"$scratch/out.log" 2>&1 &
pid=$!
trap 'kill -INT -- -$pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
until curl -sf -o /dev/null "localhost:$port/health/db"; do
	kill -0 "$pid" 2>/dev/null || { echo "dev exited:"; cat "$scratch/out.log"; exit 1; }
	sleep 0.5
done
end=$(date +%s.%N)
printf 'answered after %.0f s; %d "go: downloading" lines; load average: %s\n' \
	"$(echo "$end - $start" | bc)" "$(grep -c 'go: downloading' "$scratch/out.log")" "$(cut -d' ' -f1-3 /proc/loadavg)"
