#!/bin/sh
# install-jupyter-user-env.sh <conda_prefix> <env_file> <seam_dir>
#
# Installs the conda installation whose environment `jupyter-user-env` spawned Jupyter servers run in.
# Default: download Miniforge (MINIFORGE_DOWNLOAD_URL/MINIFORGE_VERSION) and create the environment
# from <env_file> (conda-forge). Seam: if <seam_dir>/install.sh exists (the build context's
# _build_data/jupyter_user_env/), run it instead, as `sh install.sh <conda_prefix> <env_file>`; it must
# leave the same contract behind, which is checked below either way:
#   `. <conda_prefix>/bin/activate jupyter-user-env` works in bash and puts jupyterhub-singleuser and
#   batchspawner-singleuser on PATH.
set -eu

die() {
  echo "install-jupyter-user-env: $*" >&2
  exit 1
}

[ $# -eq 3 ] || die "usage: $0 <conda_prefix> <env_file> <seam_dir>"
prefix=$1
env_file=$2
seam_dir=$3

if [ -f "$seam_dir/install.sh" ]; then
  echo "install-jupyter-user-env: using $seam_dir/install.sh (build-context seam)"
  sh "$seam_dir/install.sh" "$prefix" "$env_file"
else
  : "${MINIFORGE_VERSION:?MINIFORGE_VERSION build arg not set}"
  : "${MINIFORGE_DOWNLOAD_URL:?MINIFORGE_DOWNLOAD_URL build arg not set}"
  installer_name="Miniforge3-${MINIFORGE_VERSION}-$(uname -s)-$(uname -m).sh"
  url="${MINIFORGE_DOWNLOAD_URL%/}/${MINIFORGE_VERSION}/${installer_name}"
  workdir=$(mktemp -d)
  trap 'rm -rf "$workdir"' EXIT
  echo "install-jupyter-user-env: downloading $url"
  # python3 rather than curl/wget: the Slurm base needs python3 anyway (for the wrappers' venv).
  python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "$url" "$workdir/$installer_name"
  bash "$workdir/$installer_name" -b -p "$prefix"
  "$prefix/bin/conda" env create --quiet --file "$env_file"
  "$prefix/bin/conda" clean --all --yes
fi

[ -f "$prefix/bin/activate" ] || die "$prefix/bin/activate is missing"
# shellcheck disable=SC2016 # expanded by the inner bash
bash -c '. "$1/bin/activate" jupyter-user-env \
  && command -v jupyterhub-singleuser && command -v batchspawner-singleuser' check "$prefix" \
  || die "activating jupyter-user-env from $prefix does not provide jupyterhub-singleuser and batchspawner-singleuser"
echo "install-jupyter-user-env: jupyter-user-env ready in $prefix"
