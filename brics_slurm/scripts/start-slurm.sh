#!/bin/bash
# Container entry point of the Slurm image: starts the base image's daemons (munge, slurmctld,
# slurmd via /etc/startup.sh), makes the mounted ssh keys acceptable to sshd, creates the dev users
# (dev stage only), starts sshd (sshd-control), writes READY_FILE once sshd and slurmctld answer,
# then stays in the foreground streaming the logs. It exits non-zero
# as soon as one of the daemons dies, so podman shows the container as failed instead of a pod that
# looks alive but cannot run jobs. Once a minute it rotates the daemons' logs on the volume (rotate-logs):
# each is kept under LOG_MAX_BYTES, with LOG_KEEP older copies beside it in the container.
set -euo pipefail

SPAWNER_USER=jupyterspawner
SPAWNER_SSH_DIR=/home/$SPAWNER_USER/.ssh
SSHD_LOG=/var/log/sshd.log
SSHD_STOPPED_MARKER=/run/brics-sshd-stopped
# On the slurm_root volume, where `brics-env up` watches for it (SLURM_READY_FILE in src/plan/volumes.ts).
READY_FILE=/var/spool/slurmd/brics-env-ready
READY_WAIT_TRIES=600 # of 0.1 s
CREATE_DEV_USERS=/usr/local/sbin/create-dev-users
DAEMONS=(munged slurmctld slurmd sshd)
LOGS=(/var/log/slurmctld.log /var/log/slurmd.log "$SSHD_LOG")
LOG_MAX_BYTES=$((10 * 1024 * 1024))
LOG_KEEP=3
ROTATE_EVERY=6 # watch rounds of 10 s

log() {
  echo "start-slurm: $*" >&2
}

# True if a process with this command name (as in /proc/<pid>/comm) exists.
running() {
  local comm
  for comm in /proc/[0-9]*/comm; do
    if [[ -r $comm && $(<"$comm") == "$1" ]]; then
      return 0
    fi
  done 2>/dev/null
  return 1
}

tail_pid=""
shutdown() {
  log "stopping"
  if [[ -n $tail_pid ]]; then
    kill "$tail_pid" 2>/dev/null || true
  fi
  exit 0
}
trap shutdown TERM INT

# What an earlier start wrote says nothing about this one.
rm -f "$READY_FILE"

/etc/startup.sh

# Slurm 24.11 and later clone a namespace for jobs that load the user's environment (the hub's
# jobs do); in a container that needs CAP_SYS_ADMIN, which `brics-env up` grants only when the
# image's Slurm needs it. Say so here rather than let slurmd die with "clone: Operation not permitted".
slurm_version=$(sbatch --version 2>/dev/null | sed -n 's/^slurm[^ ]* \([0-9]*\.[0-9]*\).*/\1/p')
cap_eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
if [[ -n $slurm_version && -n $cap_eff ]]; then
  major=${slurm_version%%.*}
  minor=${slurm_version#*.}
  if ((major > 24 || (major == 24 && 10#$minor >= 11))) && ! (((16#$cap_eff >> 21) & 1)); then
    log "warning: Slurm $slurm_version needs CAP_SYS_ADMIN in a container for the hub's jobs (--get-user-env), and this container lacks it: jobs will fail with 'clone: Operation not permitted'. Start it with 'brics-env up', or write the manifest with 'brics-env manifest --slurm-sys-admin'"
  fi
fi

# Host keys come from a Secret (never from the image); podman < 4.8 ignores defaultMode and sshd
# refuses a private host key that others can read.
shopt -s nullglob
host_keys=(/etc/ssh/ssh_host_*_key)
if ((${#host_keys[@]} == 0)); then
  log "warning: no host key mounted; generating throw-away host keys for this container"
  ssh-keygen -A
else
  for key in "${host_keys[@]}"; do
    chown root:root "$key"
    chmod 0600 "$key"
    # The public half is mounted read-only from the Secret, and sshd does not mind its mode.
  done
fi

# /home may be the slurm_home volume, where the runtime made the service account's home (for the
# authorized_keys mount below) as root's; sshd accepts that, but the account should own its home.
install -d -o "$SPAWNER_USER" -g "$(id -gn "$SPAWNER_USER")" -m 0755 "/home/$SPAWNER_USER"

# authorized_keys arrives owned by root from the Secret; sshd's StrictModes wants the user to own it
# and nobody else to be able to write it or its directories.
if [[ -e $SPAWNER_SSH_DIR/authorized_keys ]]; then
  chown "$SPAWNER_USER:" "$SPAWNER_SSH_DIR" "$SPAWNER_SSH_DIR/authorized_keys"
  chmod 0700 "$SPAWNER_SSH_DIR"
  chmod 0600 "$SPAWNER_SSH_DIR/authorized_keys"
else
  log "warning: no $SPAWNER_SSH_DIR/authorized_keys; JupyterHub will not be able to log in"
fi

if [[ -x $CREATE_DEV_USERS ]]; then
  "$CREATE_DEV_USERS"
fi

/usr/local/sbin/sshd-control start

# A spawn goes hub -> ssh -> sudo -> sbatch: ready once sshd accepts connections and slurmctld
# answers. Asked here, in the background, so the watch below starts at once.
(
  for ((i = 0; i < READY_WAIT_TRIES; i++)); do
    if (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null && scontrol ping 2>/dev/null | grep -q 'is UP'; then
      date -u +%Y-%m-%dT%H:%M:%SZ >"$READY_FILE"
      exit 0
    fi
    sleep 0.1
  done
  log "warning: sshd or slurmctld did not answer within $((READY_WAIT_TRIES / 10)) s"
) &

logs=()
for f in "${LOGS[@]}"; do
  if [[ -e $f ]]; then
    logs+=("$f")
  fi
done
tail -n 0 -F "${logs[@]}" &
tail_pid=$!

log "ready"
round=0
while true; do
  round=$((round + 1))
  if ((round % ROTATE_EVERY == 0)); then
    /usr/local/sbin/rotate-logs "$LOG_MAX_BYTES" "$LOG_KEEP" "${LOGS[@]}" || log "warning: rotating the logs failed"
  fi
  for daemon in "${DAEMONS[@]}"; do
    if [[ $daemon == sshd && -e $SSHD_STOPPED_MARKER ]]; then
      continue # stopped on purpose with `sshd-control stop`
    fi
    if ! running "$daemon"; then
      log "$daemon is not running; exiting"
      kill "$tail_pid" 2>/dev/null || true
      exit 1
    fi
  done
  # Waiting on a background sleep lets the TERM trap run at once.
  sleep 10 &
  wait $! || true
done
