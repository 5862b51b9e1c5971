#!/bin/bash
# Creates the dev environment's users from DEPLOY_CONFIG_DEV_USERS (space-separated <USER>.<PROJECT>
# names): each in group jupyterusers (so jupyterspawner may sudo to it) with home
# /home/<PROJECT>/<USER>.<PROJECT>, where BricsSlurmSpawner expects it. Safe to run at every start:
# existing users are kept and only made members of jupyterusers, existing homes are kept.
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

# Homes live on the slurm_home volume and outlive the container, whose /etc/passwd does not: a user
# whose home is already there gets back the ids its files carry, so they stay theirs. Those users
# are created first, so that a new user cannot take an id an existing home needs.
existing=()
fresh=()
for name in "${users[@]}"; do
  if [[ -d /home/${name#*.}/$name ]]; then
    existing+=("$name")
  else
    fresh+=("$name")
  fi
done

add_to_group_if_exists() {
  if id -u "$1" >/dev/null 2>&1; then
    usermod --append --groups "$GROUP" "$1"
    log "user $1 exists"
    return 0
  fi
  return 1
}

for name in "${existing[@]}"; do
  add_to_group_if_exists "$name" && continue
  home=/home/${name#*.}/$name
  uid=$(stat -c %u "$home")
  gid=$(stat -c %g "$home")
  if getent passwd "$uid" >/dev/null; then
    # Taken (by an account of the image): the user gets a new id and its files follow.
    useradd --no-create-home --home-dir "$home" --shell /bin/bash --user-group --groups "$GROUP" "$name"
    chown -R "$name:$name" "$home"
    log "created user $name for its existing home $home (uid $uid was taken: files given to uid $(id -u "$name"))"
    continue
  fi
  if getent group "$gid" >/dev/null; then
    # The group id is another group's here: a group of its own, and the files follow.
    useradd --no-create-home --home-dir "$home" --shell /bin/bash --uid "$uid" --user-group --groups "$GROUP" "$name"
    chgrp -R "$name" "$home"
    log "created user $name (uid $uid) for its existing home $home (gid $gid was taken: files given to group $name)"
    continue
  fi
  groupadd --gid "$gid" "$name"
  useradd --no-create-home --home-dir "$home" --shell /bin/bash --uid "$uid" --gid "$gid" --groups "$GROUP" "$name"
  log "created user $name (uid $uid) for its existing home $home"
done

for name in "${fresh[@]}"; do
  add_to_group_if_exists "$name" && continue
  project=${name#*.}
  home=/home/$project/$name
  mkdir -p "/home/$project"
  chmod 0755 "/home/$project"
  useradd --create-home --home-dir "$home" --shell /bin/bash --user-group --groups "$GROUP" "$name"
  log "created user $name (home $home)"
done
