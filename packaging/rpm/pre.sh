# cocov .rpm %pre: the system user must exist before the payload is unpacked, so that
# /etc/cocov/cocov.toml can be installed as root:cocov 0640 (Fedora's guideline: %pre).
getent group cocov >/dev/null || groupadd --system cocov
getent passwd cocov >/dev/null || useradd --system --gid cocov --home-dir /var/lib/cocov \
    --no-create-home --shell /sbin/nologin \
    --comment "cocov daemon (created by the cocov package)" cocov
# The user checks run as when the daemon runs as root (worker.sandbox_user): no login, no home.
getent group cocov-sandbox >/dev/null || groupadd --system cocov-sandbox
getent passwd cocov-sandbox >/dev/null || useradd --system --gid cocov-sandbox \
    --home-dir /nonexistent --no-create-home --shell /sbin/nologin \
    --comment "cocov checks (created by the cocov package)" cocov-sandbox
:
