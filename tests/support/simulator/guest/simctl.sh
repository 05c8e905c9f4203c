#!/bin/sh
# A systemctl stand-in (systemd is not PID 1 in a sandbox): start/stop/enable/is-active run
# a unit's first ExecStart in the background with its Environment= and WorkingDirectory=.
# Not simulated: User=, Restart=, sandboxing options, dependencies, timers, sockets.
set -eu
units=/etc/systemd/system
mkdir -p /run/sim/units /var/log/sim
unit_file() { case $1 in *.*) echo "$units/$1" ;; *) echo "$units/$1.service" ;; esac; }
unit_name() { basename "$(unit_file "$1")"; }
running() { [ -f "/run/sim/units/$1.pid" ] && kill -0 "$(cat "/run/sim/units/$1.pid")" 2>/dev/null; }
start() {
    name=$(unit_name "$1"); file=$(unit_file "$1")
    [ -f "$file" ] || { echo "simctl: no unit $name" >&2; return 5; }
    running "$name" && return 0
    command=$(sed -n 's/^ExecStart=[-@+!]*//p' "$file" | head -n 1)
    directory=$(sed -n 's/^WorkingDirectory=//p' "$file" | head -n 1)
    (
        sed -n 's/^Environment=//p' "$file" | while read -r pair; do echo "export $pair"; done > "/run/sim/units/$name.env"
        . "/run/sim/units/$name.env"
        cd "${directory:-/}"
        exec setsid sh -c "exec $command"
    ) >> "/var/log/sim/$name.log" 2>&1 < /dev/null &
    echo $! > "/run/sim/units/$name.pid"
    echo "simctl: started $name (pid $!)"
}
stop() {
    name=$(unit_name "$1")
    running "$name" && kill "$(cat "/run/sim/units/$name.pid")"
    rm -f "/run/sim/units/$name.pid"
}
action=${1:-}; [ $# -gt 0 ] && shift
now=""
case $action in
    daemon-reload) ;;
    start|restart) for u in "$@"; do [ "$action" = restart ] && stop "$u"; start "$u"; done ;;
    stop) for u in "$@"; do stop "$u"; done ;;
    is-active) running "$(unit_name "$1")" && echo active || { echo inactive; exit 3; } ;;
    enable)
        for u in "$@"; do
            case $u in
                --now) now=1 ;;
                *) mkdir -p "$units/multi-user.target.wants"
                   ln -sf "../$(unit_name "$u")" "$units/multi-user.target.wants/$(unit_name "$u")"
                   [ -z "$now" ] || start "$u" ;;
            esac
        done ;;
    *) echo "simctl: '$action' is not simulated" >&2; exit 1 ;;
esac
