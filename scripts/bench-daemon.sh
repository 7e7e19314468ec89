# shellcheck shell=bash
# A release daemon for the benchmark scripts (sourced after lib.sh, not run): its own throw-away
# database and role, Redis prefix, storage, work directory and ports, removed again on exit.
#
#   bench_daemon_start NAME_PREFIX [BADGER_LINE ...]
#       builds nothing (target/release/cocov must exist); sets work, name, password, bin, api,
#       badger, admin (an admin token) and daemon (the pid); BADGER_LINEs go into [badger].
#       A caller's own clean-up goes in a function bench_extra_cleanup, run first on exit.
#   bench_register_repository REPO      standalone repository from file://$work/origin.git; sets token
#   bench_announce SHA                  announces SHA on main with the upload token
#   bench_wait_ingested SHA             waits for its ingestion; fails on errored or after 2 minutes
#   bench_ingest_index REPO             commits the index of $work/tree, pushes it to
#                                       $work/origin.git, registers REPO, announces and waits for
#                                       the commit; sets sha
#   sql QUERY                           runs QUERY on the benchmark's database, unaligned

bench_cleanup() {
    if declare -F bench_extra_cleanup >/dev/null; then bench_extra_cleanup; fi
    [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
    psql "$admin_url" -qc "DROP ROLE IF EXISTS $name" >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 --scan --pattern "$name:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null || true
    rm -rf "$work"
}

random_hex() { head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_daemon_start() {
    local prefix=$1
    shift
    need_commands git git psql postgresql-client redis-cli redis-tools curl curl
    ensure_services
    bin=$PWD/target/release/cocov
    [ -x "$bin" ] || { log "build first: cargo build --release --locked"; exit 1; }
    work=$(mktemp -d "/tmp/$prefix.XXXXXX")
    name=${prefix//-/_}_$(random_hex 6)
    admin_url=$(superuser_database_url)
    password=$(random_hex 18)
    daemon=""
    trap bench_cleanup EXIT
    psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE ROLE $name LOGIN PASSWORD '$password'" \
        -c "CREATE DATABASE $name OWNER $name" >/dev/null
    local api_port badger_port
    api_port=$(free_port)
    badger_port=$(free_port)
    mkdir -p "$work/storage" "$work/work"
    (umask 077 && random_hex 32 >"$work/secret.key")
    {
        printf '[server]\nbind_address = "127.0.0.1:%s"\n\n[badger]\nbind_port = %s\n' "$api_port" "$badger_port"
        printf '%s\n' "$@"
        printf '\n[database]\nhost = "127.0.0.1"\nname = "%s"\nusername = "%s"\npassword = "%s"\n' "$name" "$name" "$password"
        printf '\n[redis]\nkey_prefix = "%s:"\n' "$name"
        printf '\n[storage]\nmode = "local"\nlocal_path = "%s/storage"\n' "$work"
        printf '\n[worker]\nwork_dir = "%s/work"\n' "$work"
        printf '\n[security]\ncryptographic_key_file = "%s/secret.key"\n' "$work"
    } >"$work/cocov.toml"
    "$bin" --config "$work/cocov.toml" migrate >/dev/null
    admin=$("$bin" --config "$work/cocov.toml" admin create-user --login admin --admin | sed -n 's/.*(shown once): //p')
    [ -n "$admin" ] || { log "no admin token"; exit 1; }
    "$bin" --config "$work/cocov.toml" serve >"$work/serve.log" 2>&1 &
    daemon=$!
    api=http://127.0.0.1:$api_port
    badger=http://127.0.0.1:$badger_port
    for _ in $(seq 300); do
        curl -fsS "$api/readyz" >/dev/null 2>&1 && break
        kill -0 "$daemon" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
        sleep 0.2
    done
    log "daemon $daemon ready on $api, badges on $badger"
}

sql() { psql "postgres://$name:$password@127.0.0.1/$name" -Atqc "$1"; }

bench_register_repository() {
    token=$(curl -fsS -X POST "$api/v1/repositories" -H "authorization: bearer $admin" \
        -H 'content-type: application/json' \
        -d "{\"name\":\"$1\",\"git_url\":\"file://$work/origin.git\",\"default_branch\":\"main\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    bench_repository=$1
}

bench_announce() {
    curl -fsS -o /dev/null -X POST "$api/v1/repositories/$bench_repository/commits" \
        -H "authorization: token $token" -H 'content-type: application/json' \
        -d "{\"sha\":\"$1\",\"branch\":\"main\"}"
}

bench_wait_ingested() {
    local state=""
    for _ in $(seq 600); do
        state=$(sql "SELECT ingest_status FROM commits WHERE sha = '$1'")
        [ "$state" = completed ] && return 0
        [ "$state" = errored ] && { sql "SELECT ingest_error FROM commits WHERE sha = '$1'" >&2; exit 1; }
        sleep 0.2
    done
    log "commit $1 was not ingested: $state"
    exit 1
}

bench_ingest_index() {
    git -C "$work/tree" -c user.name=bench -c user.email=bench@example.invalid commit -qm bench --no-verify
    sha=$(git -C "$work/tree" rev-parse HEAD)
    git -C "$work/tree" push -q "$work/origin.git" main
    bench_register_repository "$1"
    bench_announce "$sha"
    bench_wait_ingested "$sha"
}
