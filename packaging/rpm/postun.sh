# cocov .rpm %postun ($1: 0 = erase, 1 = upgrade): what %systemd_postun_with_restart does.
# On upgrade, restart a running service so the new binary migrates the database and serves.
# Erase keeps the `cocov` user, /var/lib/cocov and /etc/cocov/secret.key: RPM packages never
# remove users (Fedora policy) and RPM has no purge; see packaging/README.md.
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -ge 1 ]; then
    systemctl try-restart cocov.service >/dev/null 2>&1 || :
fi
# The package lists files, not directories: remove the plugin directory it filled, if empty.
if [ "$1" -eq 0 ]; then
    rmdir /usr/share/cocov/plugins /usr/share/cocov >/dev/null 2>&1 || :
fi
:
