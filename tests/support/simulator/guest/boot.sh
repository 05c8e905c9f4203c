#!/bin/sh
# Runs on the host's file system, already inside the sandbox's network namespace and in
# fresh mount, PID and UTS namespaces (unshare): mounts the instance's root and becomes its init.
# Every mount here lives only in this mount namespace, so it vanishes with the sandbox.
set -eu
instance_dir=$1
lower=$2
root=$instance_dir/root
mount -t tmpfs -o mode=0755 sim-rw "$instance_dir/rw"
mkdir -p "$instance_dir/rw/upper" "$instance_dir/rw/work"
if ! mount -t overlay sim-root -o "lowerdir=$lower,upperdir=$instance_dir/rw/upper,workdir=$instance_dir/rw/work" "$root"; then
    echo "sim-boot: overlay mount failed, copying the root instead" >&2
    cp -a "$lower/." "$instance_dir/copy/"
    mount --bind "$instance_dir/copy" "$root"
fi
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 sim-run "$root/run"
mkdir -p "$root/run/sim" "$root/var/lib/cloud/instance" "$root/etc/sim" "$root/usr/local/bin" "$root/usr/local/sbin"
cp "$instance_dir/guest/user-data" "$root/var/lib/cloud/instance/user-data.txt"
cp "$instance_dir/guest/environment" "$root/etc/sim/environment"
cp "$instance_dir/guest/hostname" "$root/etc/hostname"
cat "$instance_dir/guest/hostname" > /proc/sys/kernel/hostname  # own UTS namespace
cp "$instance_dir/guest/hosts" "$root/etc/hosts"
# There is no DNS in the simulated VPC: names come from /etc/hosts, and a query fails at
# once on the sandbox's own loopback (debootstrap copied the host's resolver address).
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$root/etc/resolv.conf"
install -m 0755 "$instance_dir/guest/sim-init.sh" "$root/usr/local/sbin/sim-init"
install -m 0755 "$instance_dir/guest/simctl.sh" "$root/usr/local/bin/simctl"
ln -sf simctl "$root/usr/local/bin/systemctl"
exec chroot "$root" /usr/local/sbin/sim-init
