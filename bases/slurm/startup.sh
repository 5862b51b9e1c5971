#!/bin/sh
# /etc/startup.sh of the Debian-bootstrapped Slurm base: the contract of the public base
# (docker.io/nathanhess/slurm) is "start munge, slurmctld and slurmd for a single node named
# after this host, then return", so the image's CMD can go on to start its own services.
set -eu

node="$(hostname)"
cpus="$(nproc)"
# slurmd refuses a node whose configured memory exceeds what it detects; ask slurmd itself.
memory="$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)"
[ -n "${memory}" ] || memory=1024

sed -e "s/@NODE@/${node}/g" -e "s/@CPUS@/${cpus}/g" -e "s/@MEMORY@/${memory}/g" \
  /etc/slurm/slurm.conf.template > /etc/slurm/slurm.conf

# Spool and log paths may be fresh volume mounts: make sure they exist and belong to slurm.
for dir in /var/spool/slurmctld /var/spool/slurmd; do
  mkdir -p "${dir}"
done
chown slurm:slurm /var/spool/slurmctld
for log in /var/log/slurmctld.log /var/log/slurmd.log; do
  [ -e "${log}" ] || : > "${log}"
done
chown slurm:slurm /var/log/slurmctld.log

mkdir -p /run/munge
chown munge:munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --force
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
runuser -u munge -- /usr/sbin/munged

/usr/sbin/slurmctld
/usr/sbin/slurmd

# Return once the controller answers, so that whatever the image runs next can submit jobs; asked
# every 0.1 s, since the controller usually answers within a second of its start.
i=0
until scontrol ping >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "${i}" -ge 300 ]; then
    echo "startup.sh: slurmctld did not answer within 30 s" >&2
    exit 1
  fi
  sleep 0.1
done
