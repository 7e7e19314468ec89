# cocov .rpm %preun ($1: 0 = erase, 1 = upgrade): what %systemd_preun does. On erase, stop and
# disable the service; on upgrade leave it running (postun restarts it).
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now cocov.service >/dev/null 2>&1 || :
fi
:
