# Shared helpers for the scripts in this directory (sourced, not run).

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        log "apt-get update"
        as_root apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# Installs the Debian packages whose commands are missing: pairs of "command package".
need_commands() {
    local missing=()
    while [ $# -gt 1 ]; do
        command -v "$1" >/dev/null 2>&1 || missing+=("$2")
        shift 2
    done
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_ready() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

wait_for() {
    local what=$1 check=$2 i
    for i in $(seq 1 60); do
        if $check; then return 0; fi
        sleep 0.5
    done
    log "$what did not come up"
    return 1
}

# PostgreSQL and Redis on 127.0.0.1, installed from Debian's packages and started if needed.
ensure_services() {
    if ! pg_ready; then
        if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        log "starting PostgreSQL $version"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        wait_for PostgreSQL pg_ready
    fi
    if ! redis_ready; then
        command -v redis-server >/dev/null 2>&1 || apt_install redis-server
        log "starting Redis"
        as_root mkdir -p /var/lib/redis /var/log/redis
        as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/cocov-dev.log
        wait_for Redis redis_ready
    fi
}

# A PostgreSQL URL with the right to create databases: the superuser over TCP when the server
# trusts it, else a password role created through the local socket.
superuser_database_url() {
    if psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
        echo "postgres://postgres@127.0.0.1:5432/postgres"
        return
    fi
    as_root runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -c \
        "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cocov_dev') THEN CREATE ROLE cocov_dev LOGIN CREATEDB PASSWORD 'cocov_dev'; END IF; END \$\$;" >/dev/null
    echo "postgres://cocov_dev:cocov_dev@127.0.0.1:5432/postgres"
}
