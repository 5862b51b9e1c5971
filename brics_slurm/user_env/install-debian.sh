#!/bin/sh
# install-debian.sh packages
# install-debian.sh env <prefix> <env_file> <packages_dir>
#
# The Jupyter user environment built from Debian's packages, for sites that cannot reach
# conda-forge (JUPYTER_USER_ENV=debian). It leaves the same contract as Miniforge's environment:
#
#   . <prefix>/bin/activate <name>      # <name> from <env_file>'s `name:` (jupyter-user-env)
#
# puts <prefix>/envs/<name>/bin first on PATH, with jupyterhub-singleuser and batchspawner-singleuser.
# The environment is a venv over Debian's Python (--system-site-packages): JupyterLab, jupyter_server,
# ipykernel and JupyterHub's single-user server are Debian's packages; batchspawner, which Debian does
# not package, comes from <packages_dir> (the build context's _build_data/python_packages: a source
# tree, wheel or sdist) or, when that holds nothing, from the package index, pinned as in <env_file>.
#
# Two steps, so that the image build installs the Debian packages (about 1.3 GB) in a layer of its
# own, before the build data: a change to the Python packages then redoes only `env`.
#   packages  installs the Debian packages (with apt-get; a clear error where the base has none);
#   env       makes the environment (and installs the packages first if `packages` did not run).
set -eu

die() {
  echo "install-debian: $*" >&2
  exit 1
}

# What the environment is made of: JupyterLab (its server extension and built application), the
# `jupyter` and `jupyter-server` commands, the Python kernel, and JupyterHub's single-user server
# (Debian's jupyterhub; it also brings the classic Notebook 6, which jupyter_server does not serve).
# python3-venv and python3-setuptools build the venv and, offline, a batchspawner source tree.
DEBIAN_PACKAGES="jupyterlab jupyter-core jupyter-server python3-jupyter-server python3-ipykernel jupyterhub
python3-venv python3-setuptools"

install_packages() {
  # shellcheck source=/dev/null # the base image's
  os_name=$( (. /etc/os-release && echo "${PRETTY_NAME:-$ID}") 2>/dev/null || echo "an unknown distribution")
  command -v apt-get >/dev/null 2>&1 \
    || die "JUPYTER_USER_ENV=debian installs Debian's packages, but the base image ($os_name) has no apt-get." \
      "Use a Debian 13 (trixie) or newer base (brics-env bootstrap-bases builds one) or JUPYTER_USER_ENV=miniforge."

  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  missing=""
  for pkg in $DEBIAN_PACKAGES; do
    candidate=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^[[:space:]]*Candidate:[[:space:]]*//p')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
      missing="$missing $pkg"
    fi
  done
  if [ -n "$missing" ]; then
    die "JUPYTER_USER_ENV=debian needs Debian's JupyterLab packages, but the apt sources of the base image" \
      "($os_name) do not offer:$missing. JupyterLab is packaged from Debian 13 (trixie) on: use such a base" \
      "(brics-env bootstrap-bases builds one; BRICS_ENV_SLURM_BASE_IMAGE names it), or the conda environment" \
      "(BRICS_ENV_JUPYTER_USER_ENV=miniforge, which needs conda-forge or a mirror of it)."
  fi
  # shellcheck disable=SC2086 # one word per package
  apt-get install --assume-yes --no-install-recommends $DEBIAN_PACKAGES
  apt-get clean
  rm -rf /var/lib/apt/lists/*
}

[ $# -ge 1 ] || die "usage: $0 packages | env <prefix> <env_file> <packages_dir>"
case "$1" in
  packages)
    [ $# -eq 1 ] || die "usage: $0 packages"
    install_packages
    exit 0
    ;;
  env)
    [ $# -eq 4 ] || die "usage: $0 env <prefix> <env_file> <packages_dir>"
    ;;
  *) die "unknown step '$1' (expected packages or env)" ;;
esac
prefix=$2
env_file=$3
packages_dir=$4
here=$(cd "$(dirname "$0")" && pwd)
# The image's shared build helpers (install-python-packages.sh).
build_helpers=${BRICS_BUILD_HELPERS:-/usr/local/lib/brics-build}

[ -f "$env_file" ] || die "$env_file does not exist"
env_name=$(sed -n 's/^name:[[:space:]]*\([A-Za-z0-9_.-]*\)[[:space:]]*$/\1/p' "$env_file" | head -n 1)
[ -n "$env_name" ] || die "$env_file has no 'name:' line"
# conda's `- batchspawner >=1.3,<2` is also a pip requirement once the blanks are gone.
requirement=$(sed -n 's/^[[:space:]]*-[[:space:]]*\(batchspawner\)[[:space:]]*\([^[:space:]#]*\).*$/\1\2/p' "$env_file" | head -n 1)
requirement=${requirement:-batchspawner}

# shellcheck disable=SC2086 # one word per package
if ! dpkg-query -W $DEBIAN_PACKAGES >/dev/null 2>&1; then
  install_packages
fi

env_dir=$prefix/envs/$env_name
mkdir -p "$prefix/bin" "$prefix/envs"
python3 -m venv --system-site-packages "$env_dir"

# batchspawner only (the directory also holds the wrappers and, for the hub, bricsauthenticator),
# through the installer and checks every image uses; it names what is missing when packages are
# supplied (an offline site) but batchspawner is not among them.
sh "$build_helpers/install-python-packages.sh" base "$env_dir/bin/python" "$packages_dir" "$requirement" --only batchspawner

# A conda environment carries its own jupyterhub-singleuser; Debian's, in /usr/bin, runs on the
# system interpreter, which does not see batchspawner. batchspawner-singleuser runs this file with
# runpy, so it must be Python.
cat >"$env_dir/bin/jupyterhub-singleuser" <<EOF
#!$env_dir/bin/python
import sys

from jupyterhub.singleuser import main

if __name__ == "__main__":
    sys.exit(main())
EOF
chmod 0755 "$env_dir/bin/jupyterhub-singleuser"

# JupyterLab looks for its built application under sys.prefix, which in the venv is the venv:
# point that at Debian's (the system interpreter knows where it is).
app_dir=$(python3 -c 'from jupyterlab.commands import get_app_dir; print(get_app_dir())')
[ -f "$app_dir/static/index.html" ] || die "Debian's JupyterLab has no built application in $app_dir"
mkdir -p "$env_dir/share/jupyter"
ln -s "$app_dir" "$env_dir/share/jupyter/lab"
# Debian's kernel spec runs /usr/bin/python3; the environment's own (found first) runs the venv's
# interpreter, as a conda environment's kernel runs the environment's.
ipython_dir=$(mktemp -d)
IPYTHONDIR=$ipython_dir "$env_dir/bin/python" -m ipykernel install --sys-prefix
rm -rf "$ipython_dir"

sed "s#@PREFIX@#$prefix#g" "$here/activate" >"$prefix/bin/activate"
chmod 0644 "$prefix/bin/activate"

# What this prefix is, for whoever looks at an image later (there is no `conda list`).
"$env_dir/bin/python" - "$prefix/BRICS_USER_ENV" <<'EOF'
import sys
from importlib.metadata import version

names = ["jupyterlab", "notebook", "jupyter_server", "ipykernel", "jupyterhub", "batchspawner"]
with open(sys.argv[1], "w") as f:
    f.write("Jupyter user environment from Debian's packages (JUPYTER_USER_ENV=debian)\n")
    for name in names:
        f.write(f"{name} {version(name)}\n")
EOF
cat "$prefix/BRICS_USER_ENV"
