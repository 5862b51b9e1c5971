#!/bin/sh
# install-jupyter-user-env.sh <conda_prefix> <env_file> <build_data_dir>
#
# Installs the environment `jupyter-user-env` that spawned Jupyter servers run in, as chosen by the
# JUPYTER_USER_ENV build arg:
#   miniforge (default)  download Miniforge (MINIFORGE_DOWNLOAD_URL/MINIFORGE_VERSION) and create the
#                        environment from <env_file> (conda-forge);
#   debian               build it from Debian's packages (JupyterLab 4 from Debian 13 on) plus
#                        batchspawner from <build_data_dir>/python_packages or the index
#                        (brics_slurm/user_env/install-debian.sh).
# Seam: if <build_data_dir>/jupyter_user_env/install.sh exists, it runs instead of either, as
# `sh install.sh <conda_prefix> <env_file>`. Whatever made it, the same contract is checked below:
#   `. <conda_prefix>/bin/activate jupyter-user-env` works in bash and puts jupyterhub-singleuser and
#   batchspawner-singleuser on PATH, and its Jupyter server serves JupyterLab, starts a Python kernel
#   and has terminals (user_env/check-jupyterlab.py).
set -eu

die() {
  echo "install-jupyter-user-env: $*" >&2
  exit 1
}

[ $# -eq 3 ] || die "usage: $0 <conda_prefix> <env_file> <build_data_dir>"
prefix=$1
env_file=$2
build_data=$3
seam_dir=$build_data/jupyter_user_env
# brics_slurm/user_env/ in the image: the Debian environment's installer and the JupyterLab check.
user_env_lib=/usr/local/lib/brics-user-env
flavour=${JUPYTER_USER_ENV:-miniforge}

install_miniforge() {
  : "${MINIFORGE_VERSION:?MINIFORGE_VERSION build arg not set}"
  : "${MINIFORGE_DOWNLOAD_URL:?MINIFORGE_DOWNLOAD_URL build arg not set}"
  installer_name="Miniforge3-${MINIFORGE_VERSION}-$(uname -s)-$(uname -m).sh"
  url="${MINIFORGE_DOWNLOAD_URL%/}/${MINIFORGE_VERSION}/${installer_name}"
  workdir=$(mktemp -d)
  trap 'rm -rf "$workdir"' EXIT
  echo "install-jupyter-user-env: downloading $url"
  # python3 rather than curl/wget: the Slurm base needs python3 anyway (for the wrappers' venv).
  # One line saying why, instead of urllib's traceback.
  if ! reason=$(python3 -c 'import sys, urllib.request
try:
    urllib.request.urlretrieve(sys.argv[1], sys.argv[2])
except Exception as e:
    print(getattr(e, "reason", None) or e)
    sys.exit(1)' "$url" "$workdir/$installer_name"); then
    die "cannot download the Miniforge installer from $url ($reason)." \
      "Point BRICS_ENV_MINIFORGE_DOWNLOAD_URL (build arg MINIFORGE_DOWNLOAD_URL; MINIFORGE_VERSION in" \
      "brics_slurm/argfile.conf) at a mirror holding $MINIFORGE_VERSION/$installer_name; creating the" \
      "environment then also needs conda-forge or a mirror of it. Without either, build the environment" \
      "from Debian's packages: BRICS_ENV_JUPYTER_USER_ENV=debian, on a Debian 13 base (brics-env bootstrap-bases)."
  fi
  bash "$workdir/$installer_name" -b -p "$prefix"
  "$prefix/bin/conda" env create --quiet --file "$env_file" \
    || die "conda could not create the environment from $env_file (is conda-forge reachable?);" \
      "BRICS_ENV_JUPYTER_USER_ENV=debian builds it from Debian's packages instead."
  "$prefix/bin/conda" clean --all --yes
}

if [ -f "$seam_dir/install.sh" ]; then
  echo "install-jupyter-user-env: using $seam_dir/install.sh (build-context seam; JUPYTER_USER_ENV=$flavour not used)"
  sh "$seam_dir/install.sh" "$prefix" "$env_file"
else
  case "$flavour" in
    miniforge) install_miniforge ;;
    debian) sh "$user_env_lib/install-debian.sh" env "$prefix" "$env_file" "$build_data/python_packages" ;;
    *) die "JUPYTER_USER_ENV=$flavour: expected miniforge or debian" ;;
  esac
fi

[ -f "$prefix/bin/activate" ] || die "$prefix/bin/activate is missing"
# shellcheck disable=SC2016 # expanded by the inner bash
bash -c '. "$1/bin/activate" jupyter-user-env \
  && command -v jupyterhub-singleuser && command -v batchspawner-singleuser' check "$prefix" \
  || die "activating jupyter-user-env from $prefix does not provide jupyterhub-singleuser and batchspawner-singleuser"
# Users land in JupyterLab: start the environment's server once and check what a browser needs.
# shellcheck disable=SC2016 # expanded by the inner bash
bash -c '. "$1/bin/activate" jupyter-user-env && jupyter lab --version && python "$2"' check "$prefix" \
  "$user_env_lib/check-jupyterlab.py" \
  || die "the jupyter-user-env in $prefix does not give users JupyterLab (see above)"
echo "install-jupyter-user-env: jupyter-user-env ready in $prefix"
