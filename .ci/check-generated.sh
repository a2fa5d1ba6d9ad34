#!/usr/bin/env bash
# Regenerates code in a clean copy of the working tree and compares it with the
# generated files in the tree. A clean copy, not `sqlc diff`: that misses the
# file a deleted query file leaves behind, and cannot see cmd/dbgen's output.
#
# Generated files are recognised by Go's standard header ("// Code generated
# ... DO NOT EDIT."), so any generated file that `task generate` does not
# reproduce is reported too.
set -euo pipefail

root="$(git rev-parse --show-toplevel)"
task_exe="${TASK_EXE:-go tool -modfile=task.mod task}"
copy="$(mktemp -d /tmp/check-generated.XXXXXX)"
trap 'rm -rf "$copy"' EXIT

# Tracked and untracked-but-not-ignored files, as they are on disk now:
# uncommitted edits count, deleted files are skipped.
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [[ -e "$f" ]] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -C "$copy" -xf -

generated() {
	(cd "$1" && grep -rlE --include='*.go' '^// Code generated .* DO NOT EDIT\.$' . | sort) || true
}

generated "$copy" | (cd "$copy" && xargs -r rm -f)
(cd "$copy" && $task_exe generate)

status=0
while IFS= read -r f; do
	if [[ ! -e "$root/$f" ]]; then
		echo "check-generated: $f is generated but missing from the tree"
		status=1
	elif [[ ! -e "$copy/$f" ]]; then
		echo "check-generated: $f is marked generated but generate no longer produces it (stale)"
		status=1
	elif ! diff -u "$root/$f" "$copy/$f"; then
		echo "check-generated: $f differs from a fresh generate"
		status=1
	fi
done < <(sort -u <(generated "$root") <(generated "$copy"))

if [[ $status -ne 0 ]]; then
	echo "check-generated: run 'go tool -modfile=task.mod task generate' and commit the result" >&2
	exit 1
fi
echo "check-generated: generated code is up to date"
