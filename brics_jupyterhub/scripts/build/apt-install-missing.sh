#!/bin/sh
# apt-install-missing.sh <command>:<package> ...
# Installs, with apt-get, the package for each command not already on PATH, so a base image that
# already provides a tool is left as it is ("change the base as little as possible"). A base without
# apt-get must already provide the commands.
set -eu
missing=""
for pair in "$@"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing="$missing $pkg"
  fi
done
if [ -z "$missing" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-install-missing: need$missing but there is no apt-get in this base image" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # one word per package
apt-get install --assume-yes --no-install-recommends $missing
apt-get clean
rm -rf /var/lib/apt/lists/*
