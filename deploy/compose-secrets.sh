#!/bin/sh
# The compose trial's secrets: docker-compose.yml's one-shot service
# "secrets" runs this as root before anything else starts.
#
# Docker Compose mounts a file secret with the host file's owner and mode,
# which the image's non-root user (uid 65532) often cannot read. So this
# copies the operator's files from deploy/secrets (IN) into a volume (OUT),
# each readable only by the service that needs it:
#
#   OUT/ordertune/ database_url migrate_database_url master_keys admin_password
#                  owned by ORDERTUNE_UID (65532, distroless's nonroot), 0400
#   OUT/postgres/  postgres_password server_db_password
#                  owned by POSTGRES_UID (999, the postgres image's user), 0400
#
# When deploy/secrets/master_keys is missing it is generated first, in the
# format of `ordertune keys generate`, and left there for you to keep.
set -eu
IN=${IN:-/in}
OUT=${OUT:-/out}
ORDERTUNE_UID=${ORDERTUNE_UID:-65532}
POSTGRES_UID=${POSTGRES_UID:-999}
umask 077

if [ ! -s "$IN/master_keys" ]; then
	# id:base64 of 32 random bytes, one line.
	printf 'trial%s:%s\n' "$(date -u +%Y%m%d)" "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$IN/master_keys.tmp"
	# Yours, not root's: owned like deploy/secrets itself.
	chown "$(stat -c %u:%g "$IN")" "$IN/master_keys.tmp"
	mv "$IN/master_keys.tmp" "$IN/master_keys"
	echo "secrets: generated deploy/secrets/master_keys; keep a copy (without it the sealed credentials cannot be opened)"
fi

missing=
for f in database_url migrate_database_url admin_password postgres_password server_db_password; do
	[ -s "$IN/$f" ] || missing="$missing $f"
done
if [ -n "$missing" ]; then
	echo "secrets: missing in deploy/secrets:$missing; copy each .example to the name without .example (deploy/README.md, \"Compose trial\")" >&2
	exit 1
fi

# install_for OWNER DIR FILE...: copy each FILE from IN into DIR, OWNER's, 0400.
install_for() {
	owner=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	for f in "$@"; do
		cp "$IN/$f" "$dir/$f.tmp"
		chown "$owner:$owner" "$dir/$f.tmp"
		chmod 0400 "$dir/$f.tmp"
		mv -f "$dir/$f.tmp" "$dir/$f"
	done
	chown "$owner:$owner" "$dir"
	chmod 0700 "$dir"
}
install_for "$ORDERTUNE_UID" "$OUT/ordertune" database_url migrate_database_url master_keys admin_password
install_for "$POSTGRES_UID" "$OUT/postgres" postgres_password server_db_password
chmod 0755 "$OUT"
echo "secrets: ready"
