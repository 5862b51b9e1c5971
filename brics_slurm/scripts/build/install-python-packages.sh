#!/bin/sh
# Installs a Python package into an image at build time through one of two seams:
#
#   install-python-packages.sh base <python> <packages_dir> <requirement>
#       If <packages_dir> holds anything (source trees or wheels), install exactly those, offline:
#       no index, no dependency resolution, no build isolation (air-gapped builds, test stand-ins).
#       Otherwise install <requirement> with pip from the index (PIP_INDEX_URL if set and not empty).
#
#   install-python-packages.sh dev <python> <source_tree>
#       Reinstall one package from a local clone (the dev stage's _dev_build_data), without its
#       dependencies, so that an edit to the clone shows up at the next image build.
#
# <python> is a command (looked up on PATH) or the interpreter of a venv. The same file is kept in
# both image build contexts (a build context cannot reach outside itself); a test checks they match.
set -eu

die() {
  echo "install-python-packages: $*" >&2
  exit 1
}

[ $# -ge 3 ] || die "usage: $0 base <python> <packages_dir> <requirement> | dev <python> <source_tree>"
mode=$1
python=$2
shift 2

# An empty PIP_INDEX_URL (the build arg's default) would make pip use no index at all.
if [ -z "${PIP_INDEX_URL:-}" ]; then
  unset PIP_INDEX_URL
fi
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian and Ubuntu mark their system interpreter as externally managed (PEP 668), so pip refuses to
# install into it unless told to; a venv never carries the marker, so this only affects system installs.
if "$python" -c 'import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(marker) else 1)'; then
  export PIP_BREAK_SYSTEM_PACKAGES=1
fi

bridge_pth=""
cleanup() {
  if [ -n "$bridge_pth" ]; then
    rm -f "$bridge_pth"
  fi
}
trap cleanup EXIT

# Building without isolation needs the build backend (setuptools) importable by <python>. A fresh venv
# lacks it while the base interpreter may have it (e.g. Debian's python3-setuptools): for the duration
# of this install only, let the venv see the base interpreter's packages, after its own.
bridge_build_backend() {
  if "$python" -c 'import setuptools' 2>/dev/null; then
    return 0
  fi
  base_site=$("$python" -c 'import subprocess, sys
code = "import os, setuptools; print(os.path.dirname(os.path.dirname(setuptools.__file__)))"
r = subprocess.run([sys._base_executable, "-c", code], capture_output=True, text=True)
print(r.stdout.strip() if r.returncode == 0 else "")') || base_site=""
  if [ -z "$base_site" ]; then
    echo "install-python-packages: note: no setuptools for $python; a build without isolation may fail" >&2
    return 0
  fi
  purelib=$("$python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  bridge_pth="$purelib/_brics_build_backend_bridge.pth"
  printf '%s\n' "$base_site" >"$bridge_pth"
}

pip_install() {
  "$python" -m pip install --no-cache-dir "$@"
}

# pip needs git for a git+ requirement or a clone's setuptools-scm version; fetch it only then.
ensure_git() {
  if ! command -v git >/dev/null 2>&1; then
    sh "$(dirname "$0")/apt-install-missing.sh" git:git
  fi
}

case "$mode" in
  base)
    [ $# -eq 2 ] || die "usage: $0 base <python> <packages_dir> <requirement>"
    packages_dir=$1
    requirement=$2
    # Installable entries only: wheels, sdists, and source trees (pyproject.toml or setup.py).
    # Anything else (.keep, READMEs, tests next to the trees) is ignored; dot-files never match the glob.
    set --
    for entry in "$packages_dir"/*; do
      case "$entry" in
        *.whl | *.tar.gz | *.zip) [ -f "$entry" ] && set -- "$@" "$entry" ;;
        *)
          if [ -f "$entry/pyproject.toml" ] || [ -f "$entry/setup.py" ]; then
            set -- "$@" "$entry"
          elif [ -e "$entry" ]; then
            echo "install-python-packages: ignoring $entry (not a wheel, sdist or source tree)"
          fi
          ;;
      esac
    done
    if [ $# -gt 0 ]; then
      echo "install-python-packages: installing from $packages_dir (offline): $*"
      bridge_build_backend
      pip_install --no-index --no-deps --no-build-isolation "$@"
    else
      [ -n "$requirement" ] || die "no packages in $packages_dir and no requirement given"
      echo "install-python-packages: installing $requirement"
      case "$requirement" in
        *git+*) ensure_git ;;
      esac
      pip_install "$requirement"
    fi
    ;;
  dev)
    [ $# -eq 1 ] || die "usage: $0 dev <python> <source_tree>"
    tree=$1
    [ -d "$tree" ] || die "$tree is not a directory (is the dev repository cloned into _dev_build_data?)"
    if [ -d "$tree/.git" ]; then
      ensure_git
    fi
    bridge_build_backend
    echo "install-python-packages: reinstalling from $tree"
    # Offline first (the backend is usually present); a build needing backend plugins the image lacks
    # (e.g. setuptools-scm) can still succeed with isolation when an index is reachable.
    if ! pip_install --no-index --no-deps --no-build-isolation --force-reinstall "$tree"; then
      echo "install-python-packages: offline build failed; retrying with build isolation" >&2
      pip_install --no-deps --force-reinstall "$tree"
    fi
    ;;
  *)
    die "unknown mode '$mode' (expected base or dev)"
    ;;
esac
