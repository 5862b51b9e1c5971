#!/bin/bash
# Creates the dev environment's users from DEPLOY_CONFIG_DEV_USERS (space-separated <USER>.<PROJECT>
# names): each in group jupyterusers (so jupyterspawner may sudo to it) with home
# /home/<PROJECT>/<USER>.<PROJECT>, where BricsSlurmSpawner expects it. Safe to run at every start:
# existing users are kept and only made members of jupyterusers.
set -euo pipefail

GROUP=jupyterusers
# Lower case and starting with a letter, as BricsSlurmSpawner's project names require; at most
# 32 characters, useradd's limit.
NAME_RE='^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*$'

log() {
  echo "create-dev-users: $*" >&2
}

names=${DEPLOY_CONFIG_DEV_USERS:-}
if [[ -z ${names//[[:space:]]/} ]]; then
  log "DEPLOY_CONFIG_DEV_USERS is empty; no dev users created"
  exit 0
fi

read -r -a users <<<"$names"
bad=0
for name in "${users[@]}"; do
  if [[ ! $name =~ $NAME_RE || ${#name} -gt 32 ]]; then
    log "invalid user name '$name': expected <USER>.<PROJECT>, lower case letters, digits, '-' or '_', each part starting with a letter, at most 32 characters"
    bad=1
  fi
done
if ((bad)); then
  exit 1
fi

for name in "${users[@]}"; do
  project=${name#*.}
  home=/home/$project/$name
  if id -u "$name" >/dev/null 2>&1; then
    usermod --append --groups "$GROUP" "$name"
    log "user $name exists"
    continue
  fi
  mkdir -p "/home/$project"
  chmod 0755 "/home/$project"
  useradd --create-home --home-dir "$home" --shell /bin/bash --user-group --groups "$GROUP" "$name"
  log "created user $name (home $home)"
done
