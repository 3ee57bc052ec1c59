#!/usr/bin/env bash
# `make run`: the server on the embedded default (sqlite:///vault.db in this folder), unlocked.
# On first use it generates a master key and a JWT secret into .strongroom/ (mode 0600, git-ignored)
# and reuses them afterwards, so the vault survives restarts. Prints the address and a token.
set -euo pipefail
cd "$(dirname "$0")/.."
VAULTCTL=.venv/bin/vaultctl
mkdir -p .strongroom && chmod 700 .strongroom
umask 077
[ -s .strongroom/master.key ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(32))" > .strongroom/master.key
[ -s .strongroom/jwt.secret ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(48))" > .strongroom/jwt.secret
VAULT_JWT_SECRET="$(cat .strongroom/jwt.secret)"
export VAULT_JWT_SECRET
TOKEN="$("$VAULTCTL" token create --jwt --user-id 1 --role SuperAdmin --ttl 24h)"
echo "Master key: .strongroom/master.key   JWT secret: .strongroom/jwt.secret (keep both safe)"
echo "SuperAdmin token (24h): $TOKEN"
echo "Another token: VAULT_JWT_SECRET=\$(cat .strongroom/jwt.secret) $VAULTCTL token create --jwt --user-id 1 --role Admin"
exec "$VAULTCTL" server --listen "${LISTEN:-127.0.0.1:8080}" --db-dsn sqlite:///vault.db \
  --master-key-file .strongroom/master.key --jwt-secret-file .strongroom/jwt.secret
