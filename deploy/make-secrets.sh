#!/bin/sh
# Create the key files deploy/compose.yaml and compose.sqlite.yaml mount as Compose secrets:
#   sudo deploy/make-secrets.sh deploy/secrets
# master_key (the vault's master key), jwt_secret (HS256 token key), postgres_password (for the
# postgres container) and strongroom_pgpass (the same password as a libpq password file, so no
# password appears in an environment variable). Compose bind-mounts secret files with their
# host owner and mode, so each is owned by the uid that reads it: 10001 (strongroom, see
# deploy/Dockerfile) or 999 (postgres in the postgres:16 image), mode 0400.
# An existing file is never overwritten: losing the master key loses every secret.
set -eu
umask 077
dir=${1:?usage: make-secrets.sh DIRECTORY}
mkdir -p "$dir"
chmod 0700 "$dir"

random() { # $1 bytes, base64 without padding or '/' '+' (safe in URLs and pgpass files)
    head -c "$1" /dev/urandom | base64 | tr -d '\n=' | tr '/+' '_-'
}

for name in master_key jwt_secret postgres_password strongroom_pgpass; do
    if [ -e "$dir/$name" ]; then
        echo "make-secrets.sh: $dir/$name exists; not overwriting it (remove it yourself if you mean it)" >&2
        exit 1
    fi
done

random 32 >"$dir/master_key"
random 48 >"$dir/jwt_secret"
password=$(random 24)
printf '%s' "$password" >"$dir/postgres_password"
printf 'postgres:5432:strongroom:strongroom:%s\n' "$password" >"$dir/strongroom_pgpass"
chmod 0400 "$dir/master_key" "$dir/jwt_secret" "$dir/postgres_password" "$dir/strongroom_pgpass"

if [ "$(id -u)" -eq 0 ]; then
    chown 10001:10001 "$dir/master_key" "$dir/jwt_secret" "$dir/strongroom_pgpass"
    chown 999:999 "$dir/postgres_password"
else
    echo "make-secrets.sh: not root; now run:" >&2
    echo "  sudo chown 10001:10001 $dir/master_key $dir/jwt_secret $dir/strongroom_pgpass" >&2
    echo "  sudo chown 999:999 $dir/postgres_password" >&2
fi
echo "Wrote $dir/master_key, jwt_secret, postgres_password, strongroom_pgpass."
echo "Keep a copy of master_key offline: without it no backup can be restored."
