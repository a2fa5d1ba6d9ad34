#!/usr/bin/env bash
# Builds the local PostgreSQL and Redis images the container test backends use.
# No registry is reachable from these machines, so nothing can be pulled: the
# root filesystem is bootstrapped from the Debian mirror apt already uses and
# imported with `docker import`. Idempotent: images that exist are kept.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pg_image="${REPLYROCKET_PG_IMAGE:-replyrocket/postgres:15-local}"
redis_image="${REPLYROCKET_REDIS_IMAGE:-replyrocket/redis:7-local}"
suite="${IMAGE_SUITE:-bookworm}"

# Images are stamped with a hash of what they are built from (this script, the
# entrypoints, the suite), so editing an entrypoint rebuilds them while an
# unchanged checkout skips the ~75 s bootstrap.
inputs="$(cat "$here/build.sh" "$here/postgres-entrypoint.sh" "$here/redis-entrypoint.sh" <(echo "$suite") | sha256sum | cut -c1-16)"
stamp="replyrocket-inputs=$inputs"

current() { [[ "$(docker image inspect -f '{{.Comment}}' "$1" 2>/dev/null)" == "$stamp" ]]; }

if current "$pg_image" && current "$redis_image"; then
	echo "images: $pg_image and $redis_image are up to date ($stamp)"
	exit 0
fi

# The mirror must be the one apt is configured with: it is the only archive
# reachable here, and it is snapshot-pinned so the image matches the host's
# package versions.
mirror() {
	local uri=""
	if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
		uri="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
	fi
	if [[ -z "$uri" && -r /etc/apt/sources.list ]]; then
		uri="$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)"
	fi
	echo "${uri:-http://deb.debian.org/debian}"
}

command -v debootstrap >/dev/null || { echo "images: debootstrap is not installed" >&2; exit 1; }

work="$(mktemp -d /var/tmp/replyrocket-rootfs.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "images: bootstrapping $suite from $(mirror) into $rootfs"
debootstrap --variant=minbase \
	--include=postgresql-15,postgresql-15-hypopg,redis-server,netcat-openbsd \
	"$suite" "$rootfs" "$(mirror)" >"$work/debootstrap.log" 2>&1 || {
	tail -n 50 "$work/debootstrap.log" >&2
	exit 1
}

# The package scripts create a default cluster the entrypoint never uses;
# dropping it, the apt lists and docs keeps the image small.
rm -rf "$rootfs"/var/lib/postgresql/15/main "$rootfs"/etc/postgresql/15/main \
	"$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
	"$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* \
	"$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
install -m 0755 "$here/postgres-entrypoint.sh" "$rootfs/usr/local/bin/postgres-entrypoint.sh"
install -m 0755 "$here/redis-entrypoint.sh" "$rootfs/usr/local/bin/redis-entrypoint.sh"

# Images these tags point at now become dangling once re-tagged below.
old_ids="$(docker image inspect -f '{{.Id}}' "$pg_image" "$redis_image" 2>/dev/null || true)"

path='PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

echo "images: importing $pg_image"
tar -C "$rootfs" --numeric-owner -c . | docker import -m "$stamp" \
	-c "ENV $path" \
	-c 'ENV PGDATA=/var/lib/postgresql/data' \
	-c 'ENV LANG=C.UTF-8' \
	-c 'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]' \
	-c 'CMD ["postgres"]' \
	-c 'EXPOSE 5432' \
	- "$pg_image" >/dev/null

# Same tar stream, so the layer is stored once and shared by both images.
echo "images: importing $redis_image"
tar -C "$rootfs" --numeric-owner -c . | docker import -m "$stamp" \
	-c "ENV $path" \
	-c 'ENTRYPOINT ["/usr/local/bin/redis-entrypoint.sh"]' \
	-c 'CMD ["redis-server"]' \
	-c 'EXPOSE 6379' \
	- "$redis_image" >/dev/null

for id in $old_ids; do
	# Still in use (a container, or the other tag) is fine: it stays.
	docker rmi "$id" >/dev/null 2>&1 || true
done

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(${pg_image}|${redis_image}) " || true
