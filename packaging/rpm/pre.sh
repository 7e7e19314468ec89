# cocov .rpm %pre: the system user must exist before the payload is unpacked, so that
# /etc/cocov/cocov.toml can be installed as root:cocov 0640 (Fedora's guideline: %pre).
getent group cocov >/dev/null || groupadd --system cocov
getent passwd cocov >/dev/null || useradd --system --gid cocov --home-dir /var/lib/cocov \
    --no-create-home --shell /sbin/nologin \
    --comment "cocov daemon (created by the cocov package)" cocov
:
