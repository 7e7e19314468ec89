#!/usr/bin/env bash
# Runs the appliance locally on filesystem storage: installs and starts PostgreSQL and Redis when
# missing, creates the `cocov` database role and database, writes .cocov-local/cocov.toml, builds
# the release binary, creates a first admin user (once) and starts `cocov serve` in the foreground.
# API on http://127.0.0.1:3000, badges on http://127.0.0.1:4000. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_commands git git pg_isready postgresql-client redis-cli redis-tools bwrap bubblewrap
ensure_services

state=$PWD/.cocov-local
mkdir -p "$state/storage"
chmod 700 "$state"

admin_url=$(superuser_database_url)
password_file=$state/db-password
[ -f "$password_file" ] || head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$password_file"
password=$(cat "$password_file")
log "ensuring database role and database 'cocov'"
psql "$admin_url" -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cocov') THEN
    CREATE ROLE cocov LOGIN PASSWORD '$password';
  ELSE
    ALTER ROLE cocov PASSWORD '$password';
  END IF;
END \$\$;
SQL
if [ "$(psql "$admin_url" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'cocov'")" != 1 ]; then
    psql "$admin_url" -q -c "CREATE DATABASE cocov OWNER cocov" >/dev/null
fi

[ -f "$state/secret.key" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/secret.key")

cat > "$state/cocov.toml" <<TOML
# Written by scripts/run-local.sh; see etc/cocov.toml for every key.
[server]
bind_address = "127.0.0.1:3000"

[database]
host = "127.0.0.1"
name = "cocov"
username = "cocov"
password = "$password"

[storage]
mode = "local"
local_path = "$state/storage"

[security]
cryptographic_key_file = "$state/secret.key"
TOML
chmod 600 "$state/cocov.toml"

log "building cocov (release)"
cargo build --release --locked
bin=target/release/cocov
"$bin" --config "$state/cocov.toml" migrate
if [ ! -f "$state/admin-token" ]; then
    log "creating the first admin user 'admin'"
    "$bin" --config "$state/cocov.toml" admin create-user --login admin --admin | tee "$state/admin-created.txt"
    sed -n 's/.*(shown once): //p' "$state/admin-created.txt" > "$state/admin-token"
    rm -f "$state/admin-created.txt"
    chmod 600 "$state/admin-token"
fi
log "admin token is in $state/admin-token"
# The browser way in: a fresh one-time link at every start (the admin has no password until
# `cocov admin user set-password admin` gives one).
"$bin" --config "$state/cocov.toml" admin user sign-in-link admin
log "starting: API http://127.0.0.1:3000  badges http://127.0.0.1:4000"
exec "$bin" --config "$state/cocov.toml" serve
