#!/usr/bin/env bash
# Installs, from Debian's package archive, what brics-env and its tests need on the host:
# podman with runc (crun fails on hosts with cgroups in hybrid mode), ssh-keygen, git,
# mmdebstrap for offline base images, and the Python and shell test tools.
# Safe to re-run: packages already present are left alone.
set -euo pipefail

packages=(
  podman runc catatonit uidmap slirp4netns
  openssh-client git ca-certificates
  mmdebstrap
  busybox-static
  shellcheck python3-pytest python3-jinja2 python3-traitlets
  python3-venv python3-pip python3-setuptools python3-wheel
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup-host: all packages present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-host: missing ${missing[*]}, and this is not a Debian-like host; install the equivalents by hand" >&2
  exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

echo "setup-host: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
