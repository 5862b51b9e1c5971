#!/bin/bash
# Container entry point of the hub image: prepares the state the hub needs from the volume and the
# Secrets, then runs JupyterHub in the foreground (as PID 1, so `podman stop` reaches it), logging to
# the log volume as well as to stdout (podman logs). The log file is rotated by size (brics-rotating-log):
# at most LOG_KEEP older files of LOG_MAX_BYTES each are kept beside it.
set -euo pipefail

CONFIG_FILE=/etc/jupyterhub/jupyterhub_config.py
SRV_DIR=/srv/jupyterhub
LOG_FILE=/var/log/jupyterhub/jupyterhub.log
LOG_MAX_BYTES=$((10 * 1024 * 1024))
LOG_KEEP=5
CRYPT_KEY_FILE=$SRV_DIR/jupyterhub_crypt_key
SSH_KEY_FILE=$SRV_DIR/ssh_key
HUB_STATE=/etc/jupyterhub/brics_hub/hub_state.py

log() {
  echo "start-jupyterhub: $*" >&2
}

cd "$SRV_DIR"

# auth_state is stored encrypted; the key must survive restarts or stored auth_state becomes
# unreadable, so it lives on the volume and is only made once.
if [[ ! -s $CRYPT_KEY_FILE ]]; then
  log "generating $CRYPT_KEY_FILE"
  (
    umask 077
    python3 -c 'import secrets; print(secrets.token_hex(32))' >"$CRYPT_KEY_FILE.tmp"
  )
  mv "$CRYPT_KEY_FILE.tmp" "$CRYPT_KEY_FILE"
fi
chmod 0600 "$CRYPT_KEY_FILE"
JUPYTERHUB_CRYPT_KEY=$(<"$CRYPT_KEY_FILE")
export JUPYTERHUB_CRYPT_KEY

# podman < 4.8 ignores a Secret volume's defaultMode, and ssh refuses a private key others can read.
if [[ -e $SSH_KEY_FILE ]]; then
  chown "$(id -u):$(id -g)" "$SSH_KEY_FILE"
  chmod 0600 "$SSH_KEY_FILE"
else
  log "warning: no SSH client key at $SSH_KEY_FILE; spawning through ssh will fail"
fi

# Which JupyterHub writes the database: `brics-env up` compares it with a new image's before that
# image starts, and upgrades the database (after a backup) when they differ.
if [[ -f $HUB_STATE ]]; then
  python3 "$HUB_STATE" record-at-start --srv "$SRV_DIR" || log "warning: could not record the JupyterHub version that writes the database"
fi

mkdir -p "$(dirname "$LOG_FILE")"
log "starting jupyterhub -f $CONFIG_FILE $*; log: $LOG_FILE"
exec jupyterhub -f "$CONFIG_FILE" "$@" > >(brics-rotating-log --max-bytes "$LOG_MAX_BYTES" --keep "$LOG_KEEP" "$LOG_FILE") 2>&1
