#!/bin/sh
# PID 1 of a sandbox (systemd cannot be PID 1 here): runs the user data as root once, then
# starts the systemd units the user data enabled, then waits. SIGTERM ends the sandbox.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
set -a
. /etc/sim/environment
set +a
trap 'echo "sim-init: stopping"; exit 0' TERM INT
cd /
user_data=/var/lib/cloud/instance/user-data.txt
echo "sim-init: running user data at $(date +%s.%N)"  # read by the benchmark
case $(head -c 2 "$user_data") in
    '#!') chmod 0700 "$user_data"; "$user_data" ;;
    *) echo "sim-init: not a shell script (cloud-config is not simulated); running it with sh"; sh "$user_data" ;;
esac
echo "sim-init: user data exited with $?"
# Only units written under /etc/systemd/system (the user data's), not Debian's own.
for unit in /etc/systemd/system/*.wants/*.service; do
    [ -f "/etc/systemd/system/$(basename "$unit")" ] && simctl start "$(basename "$unit")"
done
touch /run/sim/boot-finished
echo "sim-init: boot finished"
while :; do
    sleep 3600 &
    wait $!
done
