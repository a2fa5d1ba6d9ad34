#!/usr/bin/env bash
# Checks the OpenAPI document the binary serves, with the tools pinned in
# package.json / package-lock.json beside this script:
#   1. redocly lint with the recommended rules: errors fail, warnings print;
#   2. a typed client: openapi-typescript generates types from the document
#      and client.ts (openapi-fetch calls of the API) must type-check.
# Needs node >= 20.19 and npm.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [[ ! -x "$here/node_modules/.bin/redocly" || ! -x "$here/node_modules/.bin/tsc" ]]; then
	echo "installing the pinned OpenAPI tools (npm ci)"
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
doc="$(mktemp /tmp/replyrocket-openapi.XXXXXX.json)"
trap 'rm -f "$doc"' EXIT
(cd "$root" && go run ./cmd/replyrocket openapi) >"$doc"
rc=0
out="$("$here/node_modules/.bin/redocly" lint --extends=recommended "$doc" 2>&1)" || rc=$?
# Redocly's boxed banner about Node 20's end of life is noise in CI logs.
printf '%s\n' "$out" | grep -v '^ *[║╔╚]' || true
if [[ $rc -ne 0 ]]; then
	exit "$rc"
fi
echo "typed client: openapi-typescript, then tsc over client.ts"
mkdir -p "$here/gen"
"$here/node_modules/.bin/openapi-typescript" "$doc" -o "$here/gen/api.d.ts"
(cd "$here" && ./node_modules/.bin/tsc -p tsconfig.json)
echo "typed client: type-checks"
