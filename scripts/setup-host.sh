#!/usr/bin/env bash
# Installs, from Debian's package archive, what brics-env and its tests need on the host:
# podman with runc (crun fails on hosts with cgroups in hybrid mode), ssh-keygen, git,
# mmdebstrap for offline base images, the Python, shell and systemd-unit test tools, and Chromium for
# the stack tier's browser scenario (driven by the npm package playwright-core, which downloads no
# browser); then makes sure podman can run a container here (installing the repository's podman
# settings only where needed).
# Safe to re-run: packages and settings already present are left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  podman runc catatonit uidmap slirp4netns
  openssh-client git ca-certificates
  mmdebstrap
  busybox-static
  shellcheck python3-pytest python3-jinja2 python3-traitlets systemd
  python3-venv python3-pip python3-setuptools python3-wheel
  chromium
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

install_packages() {
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup-host: all packages present"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-host: missing ${missing[*]}, and this is not a Debian-like host; install the equivalents by hand" >&2
    exit 1
  fi
  echo "setup-host: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
}

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

install_packages

# Some hosts cannot run podman's containers with its defaults (a hard NOFILE limit below podman's
# default ulimit, crun on cgroups v1). Probe with a container made of the host's static busybox
# (no image, no network needed); only if it fails, install the repository's settings as a drop-in
# where podman itself reads them, so every later podman and brics-env command in any shell works.
dropin_src="$root/podman/50-brics-env.conf"
dropin_dir=/etc/containers/containers.conf.d
probe_podman() {
  local rootfs rc
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin"
  cp /bin/busybox "$rootfs/bin/busybox"
  rc=0
  "${sudo_cmd[@]}" timeout 120 podman run --rm --network none --rootfs "$rootfs" /bin/busybox true >/dev/null 2>"$rootfs.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "setup-host: the probe container failed:" >&2
    tail -n 3 "$rootfs.err" | sed 's/^/setup-host:   /' >&2
  fi
  "${sudo_cmd[@]}" rm -rf "$rootfs" "$rootfs.err"
  return "$rc"
}
if [ -n "${CONTAINERS_CONF:-}" ]; then
  echo "setup-host: CONTAINERS_CONF=$CONTAINERS_CONF is set; leaving podman's settings alone"
elif cmp -s "$dropin_src" "$dropin_dir/50-brics-env.conf"; then
  echo "setup-host: podman settings already installed in $dropin_dir/50-brics-env.conf"
elif probe_podman; then
  echo "setup-host: podman runs containers with its own settings"
else
  echo "setup-host: podman cannot run a container with its defaults; installing $dropin_dir/50-brics-env.conf"
  "${sudo_cmd[@]}" install -d -m 0755 "$dropin_dir"
  "${sudo_cmd[@]}" install -m 0644 "$dropin_src" "$dropin_dir/50-brics-env.conf"
  if ! probe_podman; then
    echo "setup-host: podman still cannot run a container; see 'npx brics-env doctor'" >&2
    exit 1
  fi
  echo "setup-host: podman runs containers now"
fi
