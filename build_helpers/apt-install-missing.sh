#!/bin/sh
# apt-install-missing.sh <command>:<package> ...
# Installs, with apt-get, the package for each command not already on PATH, so a base image that
# already provides a tool is left as it is ("change the base as little as possible"). An empty
# command (":<package>") installs the package unconditionally: for callers that checked themselves
# (e.g. for a Python module). A base without apt-get must already provide what is asked for.
set -eu
missing=""
for pair in "$@"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if [ -z "$cmd" ] || ! command -v "$cmd" >/dev/null 2>&1; then
    missing="$missing $pkg"
  fi
done
if [ -z "$missing" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-install-missing: FAILED: need$missing but there is no apt-get in this base image" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # one word per package
apt-get install --assume-yes --no-install-recommends $missing
apt-get clean
rm -rf /var/lib/apt/lists/*
