#!/bin/bash
# sshd-control start|stop
# Starts or stops the container's sshd. start-slurm (the entry point) watches its daemons and exits
# when one dies; a deliberate `sshd-control stop` leaves a marker so the watcher lets sshd be down
# (maintenance, or a test of how JupyterHub copes with an unreachable Slurm host) until `start`.
set -euo pipefail

SSHD_LOG=/var/log/sshd.log
PID_FILE=/run/sshd.pid
PAUSED_MARKER=/run/brics-sshd-stopped

sshd_binary() {
  local candidate
  # sshd must be started by absolute path (it re-executes itself).
  for candidate in "$(command -v sshd || true)" /usr/sbin/sshd /usr/local/sbin/sshd; do
    if [[ -n $candidate && -x $candidate ]]; then
      echo "$candidate"
      return 0
    fi
  done
  echo "sshd-control: sshd not found" >&2
  return 1
}

case ${1:-} in
  start)
    mkdir -p /run/sshd
    touch "$SSHD_LOG"
    "$(sshd_binary)" -E "$SSHD_LOG"
    rm -f "$PAUSED_MARKER"
    ;;
  stop)
    touch "$PAUSED_MARKER"
    if [[ -s $PID_FILE ]]; then
      kill "$(<"$PID_FILE")" 2>/dev/null || true
    fi
    ;;
  *)
    echo "usage: sshd-control start|stop" >&2
    exit 2
    ;;
esac
