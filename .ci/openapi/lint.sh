#!/usr/bin/env bash
# Lints the OpenAPI document the binary serves with Redocly's recommended
# rules (pinned in package.json / package-lock.json beside this script).
# Errors fail; warnings are printed. Needs node >= 20.19 and npm.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [[ ! -x "$here/node_modules/.bin/redocly" ]]; then
	echo "installing @redocly/cli (npm ci, pinned by package-lock.json)"
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
doc="$(mktemp /tmp/replyrocket-openapi.XXXXXX.json)"
trap 'rm -f "$doc"' EXIT
(cd "$root" && go run ./cmd/replyrocket openapi) >"$doc"
rc=0
out="$("$here/node_modules/.bin/redocly" lint --extends=recommended "$doc" 2>&1)" || rc=$?
# Redocly's boxed banner about Node 20's end of life is noise in CI logs.
printf '%s\n' "$out" | grep -v '^ *[║╔╚]' || true
exit "$rc"
