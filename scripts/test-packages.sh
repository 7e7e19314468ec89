#!/usr/bin/env bash
# End-to-end package test (slow; not part of `cargo test`). As root:
#   1. builds the .deb and the .rpm (scripts/package.sh) and checks their files, control data
#      and scripts (dpkg-deb -c/-I, rpm -qpl/-qpc/--scripts/-R);
#   2. `systemd-analyze verify` on the unit;
#   3. installs the .deb into a clean Debian 12 root (debootstrap minbase, cached once in
#      ~/.cache/cocov-test-debroot, copied per run), runs `cocov --version`, `config check`,
#      `doctor`, then `cocov setup` twice against the host's PostgreSQL (a throw-away database
#      and role; the root shares the network) and `doctor` again. Commands that start a
#      sandbox enter the root with pivot_root in a mount namespace, not chroot: the kernel
#      refuses user namespaces (so bubblewrap) to chrooted processes;
#   4. starts `cocov serve` as the unit would: as user cocov, with the unit's environment and
#      its sandboxing applied by hand (systemd is not PID 1 here): ProtectSystem=strict with
#      ReadWritePaths=/var/lib/cocov, ProtectHome, PrivateTmp, PrivateDevices, ProtectHostname,
#      LoadCredential, NoNewPrivileges, an empty capability bounding set, and the unit's
#      SystemCallFilter and RestrictAddressFamilies as a seccomp filter; waits for READY=1,
#      WATCHDOG=1 and /readyz, runs a bubblewrap sandbox (true, then shellcheck on a file)
#      under the same settings, then `cocov plugin list` and `cocov plugin run shellcheck`
#      (cocov's own sandbox code, scratch in /var/lib/cocov/work; and the same run failing
#      with its scratch outside ReadWritePaths=); pushes a commit whose manifest names
#      cocov/shellcheck to a file:// repository registered through the API and waits for the
#      daemon's worker to check it and record the issue; stops the daemon with SIGTERM;
#   5. upgrades to a newer package revision (config, key and data kept), then `dpkg -r` and
#      `dpkg --purge`, checking what each leaves.
# COCOV_TEST_DEB=… COCOV_TEST_RPM=… test packages built before instead of building them.
# Debian packages it installs when missing: rpm debootstrap systemd bubblewrap shellcheck
# python3-seccomp postgresql-client redis-tools curl socat (plus PostgreSQL and Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if [ "$(id -u)" -ne 0 ]; then
    log "run as root: it uses chroot, mount namespaces and setpriv"
    exit 1
fi
need_commands rpm rpm debootstrap debootstrap systemd-analyze systemd bwrap bubblewrap \
    shellcheck shellcheck psql postgresql-client redis-cli redis-tools curl curl socat socat
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || apt_install python3-seccomp
ensure_services

t0=$SECONDS
phase() { log "[$((SECONDS - t0)) s] $*"; }
fail() {
    printf 'FAIL %s\n' "$*" >&2
    exit 1
}
pass() { printf 'ok   %s\n' "$*"; }
# expect TEXT REGEX WHAT: fails unless TEXT has a line matching REGEX.
expect() { grep -Eq -- "$2" <<<"$1" || fail "$3"$'\n'"$1"; }

work=$(mktemp -d /tmp/cocov-test-packages.XXXXXX)
root=$work/root
name=cocov_pkgtest_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
prefix="$name:"
admin_url=$(superuser_database_url)
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -d "$root" ]; then
        for m in var/cache/apt/archives dev/pts dev proc; do
            umount -l "$root/$m" 2>/dev/null || true
        done
    fi
    if [ -d "$work/rpmroot" ]; then umount -l "$work/rpmroot/dev" 2>/dev/null || true; fi
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
    psql "$admin_url" -qc "DROP ROLE IF EXISTS $name" >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 --scan --pattern "$prefix*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null || true
    if findmnt -rn -o TARGET | grep -q "^$work"; then
        log "mounts left under $work; not removing it"
    else
        rm -rf "$work"
    fi
    [ "$status" -eq 0 ] && log "all package checks passed in $((SECONDS - t0)) s"
    exit "$status"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
if [ -n "${COCOV_TEST_DEB:-}" ] && [ -n "${COCOV_TEST_RPM:-}" ]; then
    phase "using the packages given: $COCOV_TEST_DEB $COCOV_TEST_RPM"
    artifacts=("$COCOV_TEST_DEB" "$COCOV_TEST_RPM")
else
    phase "building the packages"
    mapfile -t artifacts < <(scripts/package.sh)
fi
# Copies: building the next revision below removes target/debian's earlier .deb.
cp "${artifacts[0]}" "${artifacts[1]}" "$work/"
deb=$work/$(basename "${artifacts[0]}")
rpm_file=$work/$(basename "${artifacts[1]}")
version=$(dpkg-deb -f "$deb" Version)
next_version="${version%-*}-$((${version##*-} + 1))"
# The same build as a newer package revision, for the upgrade test (--fast: lighter xz).
PATH="$HOME/.cargo/bin:$PATH" cargo deb --no-build --locked --fast --deb-version "$next_version" \
    --output "$work/cocov-next.deb" >/dev/null
pass "built $deb, $rpm_file and revision $next_version"

# ---------------------------------------------------------------------------------------------
phase "inspecting the .deb"
contents=$(dpkg-deb -c "$deb")
mapfile -t plugin_files < <(cd packaging/plugins.d && ls)
for f in usr/bin/cocov etc/cocov/cocov.toml usr/lib/systemd/system/cocov.service \
    "${plugin_files[@]/#/usr/share/cocov/plugins/}"; do
    expect "$contents" " \./$f\$" ".deb lacks /$f"
done
expect "$contents" '^-rw-r----- (root/root|0/0) .* \./etc/cocov/cocov\.toml$' "the config is not 0640"
expect "$contents" '^-rwxr-xr-x (root/root|0/0) .* \./usr/bin/cocov$' "the binary is not 0755"
depends=$(dpkg-deb -f "$deb" Depends)
for d in git bubblewrap adduser init-system-helpers; do
    expect "${depends//, /$'\n'}" "^$d( |\$)" "Depends lacks $d: $depends"
done
[ "$(dpkg-deb -f "$deb" Recommends)" = "postgresql, postgresql-client, redis-server" ] || fail "Recommends"
[ "$(dpkg-deb -I "$deb" conffiles)" = "/etc/cocov/cocov.toml" ] || fail "conffiles"
postinst=$(dpkg-deb -I "$deb" postinst)
expect "$postinst" 'adduser --quiet --system' "postinst does not create the user"
expect "$postinst" '/etc/cocov/secret.key' "postinst does not create the key"
[ "$(grep -c 'Automatically added by cargo-deb' <<<"$postinst")" -eq 2 ] ||
    fail "postinst: the systemd snippets were merged more than once"
[ "$(grep -n 'Automatically added' <<<"$postinst" | head -1 | cut -d: -f1)" -gt \
    "$(grep -n '^set -e' <<<"$postinst" | cut -d: -f1)" ] || fail "postinst: snippet before set -e"
expect "$postinst" "deb-systemd-helper enable 'cocov.service'|deb-systemd-helper enable cocov.service" \
    "postinst does not enable the unit"
expect "$(dpkg-deb -I "$deb" prerm)" "deb-systemd-invoke stop" "prerm does not stop the unit"
expect "$(dpkg-deb -I "$deb" postrm)" 'rm -rf /var/lib/cocov' "postrm does not purge data"
pass ".deb: files, modes, Depends ($depends), conffiles, scripts"

# ---------------------------------------------------------------------------------------------
phase "inspecting the .rpm"
rpm_list=$(rpm -qpl "$rpm_file")
deb_list=$(dpkg-deb -c "$deb" | awk '$1 ~ /^-/ {print substr($NF, 2)}' | grep -v '^/usr/share/doc/cocov/copyright$' | sort)
[ "$(sort <<<"$rpm_list")" = "$deb_list" ] ||
    fail "the .rpm and the .deb list different files:"$'\n'"$(diff <(sort <<<"$rpm_list") <(echo "$deb_list"))"
[ "$(rpm -qpc "$rpm_file")" = "/etc/cocov/cocov.toml" ] || fail "rpm config files"
modes=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm_file")
expect "$modes" '^-rw-r----- root cocov /etc/cocov/cocov.toml$' "rpm config is not root:cocov 0640"
scripts=$(rpm -qp --scripts "$rpm_file")
for s in preinstall postinstall preuninstall postuninstall; do
    expect "$scripts" "^$s scriptlet" "rpm lacks a $s scriptlet"
done
expect "$scripts" 'useradd --system' "rpm %pre does not create the user"
expect "$scripts" 'systemctl --no-reload preset cocov.service' "rpm %post does not preset"
expect "$scripts" 'disable --now cocov.service' "rpm %preun does not stop on erase"
expect "$scripts" 'try-restart cocov.service' "rpm %postun does not restart on upgrade"
requires=$(rpm -qpR "$rpm_file")
for r in git bubblewrap; do expect "$requires" "^$r\$" "rpm does not require $r"; done
recommends=$(rpm -qp --recommends "$rpm_file")
for r in postgresql-server redis; do expect "$recommends" "^$r\$" "rpm does not recommend $r"; done
pass ".rpm: same files as the .deb, %config(noreplace), root:cocov 0640, 4 scriptlets, requires"

# ---------------------------------------------------------------------------------------------
phase "systemd-analyze verify"
mkdir -p "$work/unit"
sed "s#/usr/bin/cocov#$PWD/target/release/cocov#g" systemd/cocov.service >"$work/unit/cocov.service"
said=$(systemd-analyze verify "$work/unit/cocov.service" 2>&1) || fail "systemd-analyze: $said"
[ -z "$said" ] || fail "systemd-analyze verify is not clean: $said"
pass "systemd-analyze verify: clean"

# ---------------------------------------------------------------------------------------------
cache=${COCOV_DEBROOT_CACHE:-$HOME/.cache/cocov-test-debroot}
if [ ! -f "$cache/bookworm/.cocov-complete" ]; then
    phase "debootstrap minbase bookworm into $cache (once)"
    mkdir -p "$cache"
    rm -rf "$cache/bookworm.tmp"
    debootstrap --variant=minbase bookworm "$cache/bookworm.tmp" http://deb.debian.org/debian >&2
    touch "$cache/bookworm.tmp/.cocov-complete"
    mv "$cache/bookworm.tmp" "$cache/bookworm"
fi
phase "copying the Debian root"
cp -a "$cache/bookworm" "$root"
mkdir "$root/.oldroot" "$root/usr/local/lib/pkgtest-helpers"
mkdir -p "$cache/apt-archives/partial"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() {
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# Entering the root: in_root chroots (dpkg, apt, stat); in_root_ns pivots into it in a fresh
# mount namespace, for whatever starts a sandbox (the kernel refuses user namespaces to chrooted
# processes); as_unit does that too and applies cocov.service's sandboxing, running the command
# as user cocov.
helpers=$root/usr/local/lib/pkgtest-helpers
# The unit's SystemCallFilter, expanded by this systemd, as an allow list.
expand() {
    systemd-analyze syscall-filter "$1" | sed -n 's/^    \([^#][^ ]*\).*/\1/p' | while read -r s; do
        case $s in @*) expand "$s" ;; *) echo "$s" ;; esac
    done
}
read -ra allow <<<"$(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' systemd/cocov.service | tr '\n' ' ')"
read -ra deny <<<"$(sed -n 's/^SystemCallFilter=~//p' systemd/cocov.service | tr '\n' ' ')"
families=$(sed -n 's/^RestrictAddressFamilies=//p' systemd/cocov.service)
for f in "${allow[@]}"; do case $f in @*) expand "$f" ;; *) echo "$f" ;; esac; done | sort -u >"$work/allow"
for f in "${deny[@]}"; do case $f in @*) expand "$f" ;; *) echo "$f" ;; esac; done | sort -u >"$work/deny"
comm -23 "$work/allow" "$work/deny" >"$helpers/syscalls"
log "seccomp: $(wc -l <"$helpers/syscalls") system calls allowed; socket() for $families"

cat >"$helpers/seccomp-exec.py" <<'PY'
# Loads the unit's system call filter (allow list, EPERM otherwise) and its address-family
# restriction, sets no_new_privs (libseccomp does), then execs the command.
import errno, os, socket, sys
import seccomp
syscalls, families, argv = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
for name in open(syscalls).read().split():
    if name in ("socket", "socketcall"):
        continue
    try:
        f.add_rule(seccomp.ALLOW, name)
    except Exception:
        pass  # not a system call on this architecture
for fam in families:
    f.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, getattr(socket, fam)))
f.load()
os.execvp(argv[0], argv)
PY

cat >"$work/enter-root.sh" <<'SH'
#!/bin/sh
# Run inside `unshare -m -u --propagation private`: enters the Debian root $1 with pivot_root
# and runs the other arguments there. With AS_UNIT=1 it first applies cocov.service's
# sandboxing and runs the command as user cocov.
set -eu
root=$1
shift
umount "$root/var/cache/apt/archives"
if [ "${AS_UNIT:-}" = 1 ]; then
    # LoadCredential=secret.key:/etc/cocov/secret.key
    cred=$root/run/credentials/cocov.service
    mkdir -p "$cred"
    mount -t tmpfs -o mode=0700,nosuid,nodev,noexec tmpfs "$cred"
    cp "$root/etc/cocov/secret.key" "$cred/secret.key"
    chroot "$root" chown -R cocov:cocov /run/credentials/cocov.service
    chmod 0400 "$cred/secret.key"
    mount -o remount,ro "$cred"
    # PrivateTmp=yes
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/var/tmp"
    # ProtectHome=yes: empty and inaccessible
    for d in home root; do mount -t tmpfs -o ro,mode=000 tmpfs "$root/$d"; done
    # PrivateDevices=yes: a fresh /dev with the pseudo devices only
    mount -t tmpfs -o mode=755,nosuid tmpfs "$root/dev"
    for n in null zero full random urandom tty; do
        touch "$root/dev/$n"
        mount --bind "/dev/$n" "$root/dev/$n"
    done
    mkdir "$root/dev/pts" "$root/dev/shm"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
    ln -s /proc/self/fd "$root/dev/fd"
    # Negative control: what ProtectKernelTunables= would do (it must break the sandbox).
    if [ "${AS_UNIT_PROTECT_KERNEL_TUNABLES:-}" = 1 ]; then
        mount --bind "$root/proc/sys" "$root/proc/sys"
        mount -o remount,bind,ro "$root/proc/sys"
    fi
fi
mount --rbind "$root" "$root"
if [ "${AS_UNIT:-}" = 1 ]; then
    # ProtectSystem=strict + ReadWritePaths=/var/lib/cocov: read-only but for the state
    # directory and the API file systems.
    mount --bind "$root/var/lib/cocov" "$root/var/lib/cocov"
    mount -o remount,bind,ro "$root"
fi
cd "$root"
pivot_root . .oldroot
umount -l /.oldroot
cd /
if [ "${AS_UNIT:-}" = 1 ]; then
    # ProtectHostname=yes is unshare's UTS namespace. Then SystemCallFilter=,
    # RestrictAddressFamilies=, NoNewPrivileges=yes, User=cocov, CapabilityBoundingSet= (empty).
    exec /usr/bin/python3 /usr/local/lib/pkgtest-helpers/seccomp-exec.py \
        /usr/local/lib/pkgtest-helpers/syscalls "$AS_UNIT_FAMILIES" \
        setpriv --reuid=cocov --regid=cocov --init-groups --inh-caps=-all --bounding-set=-all \
        --no-new-privs -- "$@"
fi
exec "$@"
SH
chmod 755 "$work/enter-root.sh"
in_root_ns() {
    unshare -m -u --propagation private -- "$work/enter-root.sh" "$root" \
        /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}
# The unit's environment (systemd sets HOME, USER, LOGNAME, SHELL from the user).
unit_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/var/lib/cocov USER=cocov
    LOGNAME=cocov SHELL=/usr/sbin/nologin COCOV_CONFIG=/etc/cocov/cocov.toml
    COCOV_SECURITY_CRYPTOGRAPHIC_KEY_FILE=/run/credentials/cocov.service/secret.key)
as_unit() {
    AS_UNIT=1 AS_UNIT_FAMILIES="$families" unshare -m -u --propagation private -- \
        "$work/enter-root.sh" "$root" "${unit_env[@]}" "$@"
}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

phase "dpkg -i, then apt-get -f install for the dependencies"
cp "$deb" "$root/tmp/cocov.deb"
cp "$work/cocov-next.deb" "$root/tmp/cocov-next.deb"
if in_root dpkg -i /tmp/cocov.deb >"$work/dpkg-i.log" 2>&1; then
    log "dpkg -i succeeded without dependencies?"
fi
in_root apt-get update -qq >/dev/null
t_install=$SECONDS
in_root apt-get -f install -y -qq >"$work/apt-f.log" 2>&1 || fail "apt-get -f install: $(cat "$work/apt-f.log")"
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
[ "$(in_root dpkg-query -W -f '${Status}' cocov)" = "install ok installed" ] || fail "cocov not installed"
pass "installed with its dependencies in $((SECONDS - t_install)) s"
# The check's linter, and libseccomp's Python binding for applying the unit's filter.
in_root apt-get install -y -qq shellcheck python3-seccomp >/dev/null 2>&1 ||
    fail "apt-get install shellcheck python3-seccomp in the root"

# What the maintainer scripts did.
st() { in_root stat -c '%U:%G %a' "$1"; }
[ "$(st /etc/cocov/cocov.toml)" = "root:cocov 640" ] || fail "config: $(st /etc/cocov/cocov.toml)"
[ "$(st /etc/cocov/secret.key)" = "root:root 600" ] || fail "key: $(st /etc/cocov/secret.key)"
grep -Eqx '[0-9a-f]{64}' "$root/etc/cocov/secret.key" || fail "the key is not 64 hex characters"
[ "$(st /var/lib/cocov)" = "cocov:cocov 750" ] || fail "/var/lib/cocov: $(st /var/lib/cocov)"
[ "$(st /var/lib/cocov/storage)" = "cocov:cocov 750" ] || fail "storage: $(st /var/lib/cocov/storage)"
expect "$(in_root getent passwd cocov)" '^cocov:x:[0-9]+:[0-9]+:cocov daemon \(created by the cocov package\)(,*):/var/lib/cocov:/usr/sbin/nologin$' \
    "the cocov user"
expect "$(in_root getent passwd cocov-sandbox)" '^cocov-sandbox:x:[0-9]+:[0-9]+:cocov checks \(created by the cocov package\)(,*):/nonexistent:/usr/sbin/nologin$' \
    "the cocov-sandbox user"
[ -L "$root/etc/systemd/system/multi-user.target.wants/cocov.service" ] || fail "unit not enabled"
key_sum=$(md5sum <"$root/etc/cocov/secret.key")
pass "users cocov and cocov-sandbox, /var/lib/cocov 0750, config root:cocov 0640, key root 0600, unit enabled"

said_version=$(in_root cocov --version) || fail "cocov --version"
expect "$said_version" "^cocov ${version%-*}\$" "cocov --version: $said_version"
out=$(in_root cocov config check) || fail "cocov config check: $out"
expect "$out" 'configuration is valid \(/etc/cocov/cocov.toml' "config check: $out"
pass "cocov --version ($said_version); cocov config check"
log "cocov doctor before setup (failures are expected here):"
in_root_ns cocov doctor >&2 || true

# ---------------------------------------------------------------------------------------------
phase "cocov setup (database $name on the host's PostgreSQL)"
setup() {
    in_root cocov setup --database-name "$name" --database-user "$name" --superuser-url "$admin_url"
}
out=$(setup) || fail "cocov setup: $out"
printf '%s\n' "$out" >&2
expect "$out" "^database role $name: created" "setup: role"
expect "$out" "^database $name: created, owned by $name" "setup: database"
expect "$out" "^configuration /etc/cocov/cocov.toml: \[database\]" "setup: config"
expect "$out" '^personal access token \(shown once\): cop_' "setup: admin"
admin_token=$(sed -n 's/^personal access token (shown once): //p' <<<"$out")
[ "$(st /etc/cocov/cocov.toml)" = "root:cocov 640" ] || fail "config after setup: $(st /etc/cocov/cocov.toml)"
config_sum=$(md5sum <"$root/etc/cocov/cocov.toml")
out=$(setup) || fail "cocov setup (again): $out"
expect "$out" "^database role $name: exists, unchanged" "setup again: role"
expect "$out" "^database $name: exists, unchanged" "setup again: database"
expect "$out" '^configuration /etc/cocov/cocov.toml: unchanged' "setup again: config"
expect "$out" '^admin user: 1 user\(s\) exist, none created' "setup again: admin"
[ "$(md5sum <"$root/etc/cocov/cocov.toml")" = "$config_sum" ] || fail "setup changed the config again"
pass "cocov setup: created role, database, config and admin; a second run changed nothing"

out=$(in_root_ns env COCOV_REDIS_KEY_PREFIX="$prefix" cocov doctor 2>&1) || fail "cocov doctor: $out"
printf '%s\n' "$out" >&2
# doctor runs as root here, so its probe runs as the dedicated sandbox user, as a root daemon's
# checks would (the unit's daemon is cocov, whose checks run as cocov).
expect "$out" '^ok   bubblewrap sandbox starts as cocov-sandbox' "doctor: sandbox as cocov-sandbox"
expect "$out" '^ok   sandbox seccomp filter on' "doctor: seccomp"
pass "cocov doctor: every check passes"

# ---------------------------------------------------------------------------------------------
phase "running as the unit would"
api_port=$(free_port)
badger_port=$(free_port)
# ExecStartPre=
out=$(as_unit /usr/bin/cocov config check 2>&1) || fail "ExecStartPre (config check) as the unit: $out"
expect "$out" 'cryptographic_key_file = "/run/credentials/cocov.service/secret.key"' "credential path"
pass "ExecStartPre=cocov config check, as cocov under the unit's sandboxing"

# The notification socket systemd would own: READY=1, STATUS=, WATCHDOG=1 arrive here.
socat -u UNIX-RECV:"$root/run/cocov-notify.sock" - >"$work/notify.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$root/run/cocov-notify.sock" ] && break; sleep 0.1; done
chmod 666 "$root/run/cocov-notify.sock"

t_start=$SECONDS
# Not through the as_unit function: `$!` must be the process that becomes cocov (every step
# execs), so that SIGTERM reaches the daemon as systemd's would.
AS_UNIT=1 AS_UNIT_FAMILIES="$families" unshare -m -u --propagation private -- \
    "$work/enter-root.sh" "$root" "${unit_env[@]}" NOTIFY_SOCKET=/run/cocov-notify.sock WATCHDOG_USEC=2000000 \
    COCOV_REDIS_KEY_PREFIX="$prefix" COCOV_BIND_ADDRESS="127.0.0.1:$api_port" \
    COCOV_BADGER_BIND_PORT="$badger_port" /usr/bin/cocov serve 2>"$work/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
ready=""
for _ in $(seq 300); do
    if curl -fsS "http://127.0.0.1:$api_port/readyz" >"$work/readyz" 2>/dev/null; then ready=1; break; fi
    kill -0 "$serve_pid" 2>/dev/null || fail "cocov serve exited: $(cat "$work/serve.log")"
    sleep 0.2
done
[ -n "$ready" ] || fail "/readyz did not answer 200 within 60 s: $(cat "$work/serve.log")"
pass "cocov serve ready in $((SECONDS - t_start)) s as the unit would run it: $(cat "$work/readyz")"
sleep 3
notes=$(tr '\n' ' ' <"$work/notify.log")
expect "$notes" 'READY=1' "no READY=1 on the notify socket: $notes"
expect "$notes" 'WATCHDOG=1' "no WATCHDOG=1 on the notify socket: $notes"
pass "sd_notify: READY=1 and WATCHDOG=1 received"

# A check's sandbox, under the same settings, while the daemon runs.
mkdir -p "$root/var/lib/cocov/work/src"
# shellcheck disable=SC2016 # the file's content, with an unquoted $1 for shellcheck to find
printf '#!/bin/sh\necho $1\n' >"$root/var/lib/cocov/work/src/check-me.sh"
in_root chown -R cocov:cocov /var/lib/cocov/work
bwrap=(/usr/bin/bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr
    --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc
    --dev /dev --tmpfs /tmp --uid 65534 --gid 65534 --hostname sandbox)
out=$(as_unit "${bwrap[@]}" /usr/bin/true 2>&1) || fail "bwrap under the unit's settings: $out"
set +e
out=$(as_unit "${bwrap[@]}" --ro-bind /var/lib/cocov/work/src /src --chdir /src \
    /usr/bin/shellcheck -f gcc check-me.sh 2>&1)
status=$?
set -e
[ "$status" -eq 1 ] || fail "shellcheck in the sandbox exited $status: $out"
expect "$out" 'check-me.sh:2:6: .*SC2086' "shellcheck did not report SC2086: $out"
pass "bubblewrap sandbox under the unit's settings: /usr/bin/true, and shellcheck found SC2086"

# A real check: the built-in shellcheck plugin through cocov's own sandbox code (bwrap
# --unshare-all, --uid 1000, rlimits in pre_exec, checkstyle parsing), as user cocov under the
# unit's settings, with its scratch directory in worker.work_dir (/var/lib/cocov/work): that
# only works if ReadWritePaths= covers it.
if in_root cocov plugin run --help >/dev/null 2>&1; then
    out=$(as_unit /usr/bin/cocov plugin list 2>&1) || fail "cocov plugin list as the unit: $out"
    for p in shellcheck ruff yamllint cppcheck bandit; do
        expect "$out" "^cocov/$p " "cocov plugin list lacks cocov/$p: $out"
    done
    set +e
    out=$(as_unit TMPDIR=/var/lib/cocov/work /usr/bin/cocov plugin run shellcheck \
        --dir /var/lib/cocov/work/src 2>&1)
    status=$?
    set -e
    [ "$status" -eq 0 ] || fail "cocov plugin run shellcheck under the unit's settings exited $status: $out"
    expect "$out" 'check-me\.sh:2: .*[Dd]ouble quote' "cocov plugin run did not report SC2086: $out"
    expect "$out" 'shellcheck: 1 issue' "cocov plugin run: not exactly one issue: $out"
    printf '%s\n' "$out" >&2
    leftover=$(find "$root/var/lib/cocov/work" -mindepth 1 -maxdepth 1 -name 'cocov-plugin-*')
    [ -z "$leftover" ] || fail "cocov plugin run left its scratch directory: $leftover"
    pass "cocov plugin run shellcheck as the unit: the SC2086 finding, scratch in /var/lib/cocov/work"
    # Negative control: a directory cocov owns but outside ReadWritePaths= is read-only under
    # ProtectSystem=strict, so the same run fails there (and the TMPDIR above was honoured).
    mkdir -p "$root/srv/cocov-scratch"
    in_root chown cocov:cocov /srv/cocov-scratch
    set +e
    out=$(as_unit TMPDIR=/srv/cocov-scratch /usr/bin/cocov plugin run shellcheck \
        --dir /var/lib/cocov/work/src 2>&1)
    status=$?
    set -e
    [ "$status" -ne 0 ] || fail "plugin run wrote outside ReadWritePaths=: the emulation is not applied"
    expect "$out" 'Read-only file system' "plugin run outside ReadWritePaths=: $out"
    pass "negative control: the same run with its scratch in /srv (owned by cocov) fails: read-only"
else
    log "this cocov has no 'plugin run': only the bubblewrap+shellcheck step above ran"
fi

# The worker's own path, in the daemon running as the unit: a pushed commit whose manifest
# names the shellcheck plugin is fetched, archived into /var/lib/cocov/storage, unpacked into
# worker.work_dir and checked in the sandbox; its finding becomes an issue.
[ -n "$admin_token" ] || fail "no admin token from cocov setup"
{
    api=http://127.0.0.1:$api_port
    origin=/srv/pkgtest-origin.git
    git init -q --bare -b main "$root$origin"
    git init -q -b main "$work/src"
    mkdir "$work/src/bin"
    printf 'version: "0.1.alpha"\nchecks:\n  - plugin: cocov/shellcheck:v0.1\n' >"$work/src/.cocov.yaml"
    # shellcheck disable=SC2016 # the file's content, with an unquoted $1 for shellcheck to find
    printf '#!/bin/sh\necho $1\n' >"$work/src/bin/run.sh"
    git -C "$work/src" add -A
    git -C "$work/src" -c user.name=pkgtest -c user.email=pkgtest@example.invalid commit -qm "a check"
    sha=$(git -C "$work/src" rev-parse HEAD)
    git -C "$work/src" push -q "$root$origin" main
    in_root chown -R cocov:cocov "$origin"
    repo_token=$(curl -fsS -X POST "$api/v1/repositories" -H "authorization: bearer $admin_token" \
        -H 'content-type: application/json' \
        -d "{\"name\":\"pkgtest\",\"git_url\":\"file://$origin\",\"default_branch\":\"main\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') ||
        fail "registering a repository: $(tail -5 "$work/serve.log")"
    code=$(curl -sS -o "$work/announce" -w '%{http_code}' -X POST "$api/v1/repositories/pkgtest/commits" \
        -H "authorization: token $repo_token" -H 'content-type: application/json' \
        -d "{\"sha\":\"$sha\",\"branch\":\"main\"}")
    [ "$code" = 202 ] || fail "announcing the commit: $code $(cat "$work/announce")"
    t_check=$(date +%s%N)
    state=""
    for _ in $(seq 600); do
        state=$(curl -fsS "$api/v1/repositories/pkgtest/commits/$sha/checks" \
            -H "authorization: bearer $admin_token" 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin).get("status", ""))' 2>/dev/null) || true
        case $state in completed | errored | canceled | not_configured) break ;; esac
        kill -0 "$serve_pid" 2>/dev/null || fail "cocov serve exited: $(tail -20 "$work/serve.log")"
        sleep 0.2
    done
    [ "$state" = completed ] ||
        fail "the check set ended '$state': $(curl -sS "$api/v1/repositories/pkgtest/commits/$sha/checks" \
            -H "authorization: bearer $admin_token") $(tail -20 "$work/serve.log")"
    issues=$(curl -fsS "$api/v1/repositories/pkgtest/commits/$sha/issues" -H "authorization: bearer $admin_token" |
        python3 -c 'import json,sys
for i in json.load(sys.stdin)["issues"]:
    print(i["file"], i["line_start"], i["kind"], i["message"])')
    expect "$issues" '^bin/run\.sh 2 style Double quote .*\(SC2086\)$' "the check's issues: $issues"
    [ "$(st /var/lib/cocov/work | cut -d' ' -f1)" = cocov:cocov ] ||
        fail "the worker did not create its work_dir as cocov: $(st /var/lib/cocov/work)"
    pass "the daemon's worker, as the unit: pushed commit checked in $((($(date +%s%N) - t_check) / 1000000)) ms, issue: $issues"
}
set +e
out=$(AS_UNIT_PROTECT_KERNEL_TUNABLES=1 as_unit "${bwrap[@]}" /usr/bin/true 2>&1)
status=$?
set -e
[ "$status" -ne 0 ] || fail "the negative control passed: the emulation is not applied"
pass "negative control: with ProtectKernelTunables the sandbox fails ($out)"

kill -TERM "$serve_pid"
status=0
wait "$serve_pid" || status=$?
[ "$status" -eq 0 ] || fail "cocov serve exited $status after SIGTERM: $(tail -5 "$work/serve.log")"
expect "$(tr '\n' ' ' <"$work/notify.log")" 'STOPPING=1' "no STOPPING=1"
pass "SIGTERM: drained and exited 0"

# ---------------------------------------------------------------------------------------------
phase "upgrade to $next_version"
echo kept >"$root/var/lib/cocov/storage/upgrade-marker"
in_root dpkg -i /tmp/cocov-next.deb >"$work/upgrade.log" 2>&1 || fail "upgrade: $(cat "$work/upgrade.log")"
# shellcheck disable=SC2016 # a dpkg-query format
[ "$(in_root dpkg-query -W -f '${Version}' cocov)" = "$next_version" ] || fail "not upgraded"
[ "$(md5sum <"$root/etc/cocov/cocov.toml")" = "$config_sum" ] || fail "the upgrade replaced the config"
[ "$(st /etc/cocov/cocov.toml)" = "root:cocov 640" ] || fail "config after upgrade: $(st /etc/cocov/cocov.toml)"
[ "$(md5sum <"$root/etc/cocov/secret.key")" = "$key_sum" ] || fail "the upgrade replaced the key"
[ -f "$root/var/lib/cocov/storage/upgrade-marker" ] || fail "the upgrade lost data"
pass "upgrade: config (as setup wrote it), key and data kept"

# ---------------------------------------------------------------------------------------------
phase "dpkg -r, then dpkg --purge"
in_root dpkg -r cocov >"$work/remove.log" 2>&1 || fail "dpkg -r: $(cat "$work/remove.log")"
for f in /etc/cocov/cocov.toml /etc/cocov/secret.key /var/lib/cocov/storage/upgrade-marker; do
    [ -e "$root$f" ] || fail "dpkg -r removed $f"
done
in_root getent passwd cocov >/dev/null || fail "dpkg -r removed the user"
[ ! -e "$root/usr/bin/cocov" ] || fail "dpkg -r left /usr/bin/cocov"
pass "dpkg -r: binary gone; config, key, data and user kept"

in_root dpkg --purge cocov >"$work/purge.log" 2>&1 || fail "dpkg --purge: $(cat "$work/purge.log")"
cat "$work/purge.log" >&2
for f in /etc/cocov /var/lib/cocov /usr/lib/systemd/system/cocov.service \
    /etc/systemd/system/multi-user.target.wants/cocov.service; do
    [ ! -e "$root$f" ] || fail "purge left $f"
done
in_root getent passwd cocov >/dev/null && fail "purge left the user"
in_root getent group cocov >/dev/null && fail "purge left the group"
in_root getent passwd cocov-sandbox >/dev/null && fail "purge left the cocov-sandbox user"
in_root dpkg-statoverride --list | grep -q cocov && fail "purge left a statoverride"
left=$(find "$root/etc" "$root/var" "$root/usr" -name '*cocov*' ! -path "$root/var/cache/apt/*" 2>/dev/null)
[ -z "$left" ] || fail "purge left: $left"
pass "dpkg --purge: nothing named cocov left; the database $name and its role stay in PostgreSQL"
psql "$admin_url" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -qx 1 ||
    fail "the database should outlive the package"

# ---------------------------------------------------------------------------------------------
phase "the .rpm: install, upgrade and erase in a second copy of the Debian root (rpm --root)"
# No RPM-based root here: rpm installs into a copy of the Debian root with --nodeps (its
# requirements are RPM package names); the scriptlets run chrooted there with the root's
# groupadd/useradd. This checks the payload, the file attributes and the four scriptlets.
rpmroot=$work/rpmroot
cp -a "$cache/bookworm" "$rpmroot"
mount --bind /dev "$rpmroot/dev"
rpm_in() { rpm --root "$rpmroot" "$@" 2>&1 | grep -Ev 'use Alien instead|what you are doing' || true; }
rpm_release=$(rpm -qp --qf '%{RELEASE}' "$rpm_file")
PATH="$HOME/.cargo/bin:$PATH" cargo generate-rpm --auto-req auto \
    -s "release = \"$((rpm_release + 1))\"" -o "$work/cocov-next.rpm" >&2
rpm --root "$rpmroot" --initdb
out=$(rpm_in -i --nodeps "$rpm_file")
rpm --root "$rpmroot" -q cocov >/dev/null 2>&1 || fail "rpm -i: $out"
rst() { chroot "$rpmroot" stat -c '%U:%G %a' "$1"; }
expect "$(chroot "$rpmroot" getent passwd cocov)" \
    '^cocov:x:[0-9]+:[0-9]+:cocov daemon \(created by the cocov package\):/var/lib/cocov:/sbin/nologin$' "rpm: the cocov user"
expect "$(chroot "$rpmroot" getent passwd cocov-sandbox)" \
    '^cocov-sandbox:x:[0-9]+:[0-9]+:cocov checks \(created by the cocov package\):/nonexistent:/sbin/nologin$' "rpm: the cocov-sandbox user"
[ "$(rst /etc/cocov/cocov.toml)" = "root:cocov 640" ] || fail "rpm config: $(rst /etc/cocov/cocov.toml)"
[ "$(rst /etc/cocov/secret.key)" = "root:root 600" ] || fail "rpm key: $(rst /etc/cocov/secret.key)"
grep -Eqx '[0-9a-f]{64}' "$rpmroot/etc/cocov/secret.key" || fail "rpm: the key is not 64 hex characters"
[ "$(rst /var/lib/cocov)" = "cocov:cocov 750" ] || fail "rpm /var/lib/cocov: $(rst /var/lib/cocov)"
[ "$(rst /var/lib/cocov/storage)" = "cocov:cocov 750" ] || fail "rpm storage: $(rst /var/lib/cocov/storage)"
for f in "${plugin_files[@]}"; do
    [ "$(rst "/usr/share/cocov/plugins/$f")" = "root:root 644" ] || fail "rpm: plugin file $f"
done
expect "$(chroot "$rpmroot" /usr/bin/cocov --version)" "^cocov ${version%-*}\$" "rpm: cocov --version"
out=$(chroot "$rpmroot" /usr/bin/cocov config check 2>&1) || fail "rpm: cocov config check: $out"
pass "rpm -i: user cocov (%pre), config root:cocov 0640, key root 0600, /var/lib/cocov 0750 (%post), plugins, cocov runs"

echo "# edited here" >>"$rpmroot/etc/cocov/cocov.toml"
rpm_config_sum=$(md5sum <"$rpmroot/etc/cocov/cocov.toml")
rpm_key_sum=$(md5sum <"$rpmroot/etc/cocov/secret.key")
echo kept >"$rpmroot/var/lib/cocov/storage/marker"
out=$(rpm_in -U --nodeps "$work/cocov-next.rpm")
# shellcheck disable=SC2016 # an rpm query format
[ "$(rpm --root "$rpmroot" -q --qf '%{RELEASE}' cocov 2>/dev/null)" = "$((rpm_release + 1))" ] ||
    fail "rpm -U: $out"
[ "$(md5sum <"$rpmroot/etc/cocov/cocov.toml")" = "$rpm_config_sum" ] || fail "rpm -U replaced the edited config"
[ ! -e "$rpmroot/etc/cocov/cocov.toml.rpmnew" ] || fail "rpm -U: an .rpmnew for an unchanged default"
[ "$(md5sum <"$rpmroot/etc/cocov/secret.key")" = "$rpm_key_sum" ] || fail "rpm -U replaced the key"
[ "$(rst /etc/cocov/cocov.toml)" = "root:cocov 640" ] || fail "rpm -U config: $(rst /etc/cocov/cocov.toml)"
[ -f "$rpmroot/var/lib/cocov/storage/marker" ] || fail "rpm -U lost data"
pass "rpm -U to release $((rpm_release + 1)): edited config, key and data kept"

out=$(rpm_in -e cocov)
! rpm --root "$rpmroot" -q cocov >/dev/null 2>&1 || fail "rpm -e: $out"
for f in /usr/bin/cocov /usr/lib/systemd/system/cocov.service /usr/share/cocov /etc/cocov/cocov.toml; do
    [ ! -e "$rpmroot$f" ] || fail "rpm -e left $f"
done
[ "$(md5sum <"$rpmroot/etc/cocov/cocov.toml.rpmsave")" = "$rpm_config_sum" ] || fail "rpm -e: no .rpmsave of the edited config"
for f in /etc/cocov/secret.key /var/lib/cocov/storage/marker; do
    [ -e "$rpmroot$f" ] || fail "rpm -e removed $f"
done
chroot "$rpmroot" getent passwd cocov >/dev/null || fail "rpm -e removed the user"
pass "rpm -e: binary, unit and plugins gone; edited config kept as .rpmsave; key, data and user kept"
