# cocov .rpm %post ($1: 1 = install, 2 = upgrade). Mirrors the .deb postinst: state directory,
# secret key, and what %systemd_post does (preset on first install; the unit is not started:
# the appliance needs `cocov setup` first).
if [ ! -d /var/lib/cocov ]; then
    install -d -o cocov -g cocov -m 0750 /var/lib/cocov
fi
if [ ! -d /var/lib/cocov/storage ]; then
    install -d -o cocov -g cocov -m 0750 /var/lib/cocov/storage
fi
# ssh host keys git trusts (git.known_hosts_file); the admin adds them (README).
if [ ! -d /var/lib/cocov/ssh ]; then
    install -d -o cocov -g cocov -m 0750 /var/lib/cocov/ssh
fi
# The 256-bit key that encrypts secrets at rest: generated once, never replaced. root-only;
# systemd passes a copy to the daemon (LoadCredential=).
if [ ! -e /etc/cocov/secret.key ]; then
    (
        umask 077
        head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' > /etc/cocov/secret.key.new &&
            mv /etc/cocov/secret.key.new /etc/cocov/secret.key
    ) || :
fi
if [ "$1" -eq 1 ]; then
    systemctl --no-reload preset cocov.service >/dev/null 2>&1 || :
fi
systemctl daemon-reload >/dev/null 2>&1 || :
:
