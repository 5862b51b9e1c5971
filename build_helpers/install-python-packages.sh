#!/bin/sh
# Installs Python packages into an image at build time, then checks what it installed, so that a
# broken package stops the build instead of the first spawn. Two seams:
#
#   install-python-packages.sh base <python> <packages_dir> <requirement> [options]
#       If <packages_dir> holds anything (source trees, wheels, sdists), install those, offline:
#       no index, no dependency resolution, no build isolation (air-gapped builds, test stand-ins).
#       Otherwise install <requirement> with pip from the index (PIP_INDEX_URL if set and not empty).
#
#   install-python-packages.sh dev <python> <source_tree> <manifest> [options]
#       Reinstall one package from a local clone (the dev stage's _dev_build_data), without its
#       dependencies, so that an edit to the clone shows up at the next image build.
#
# Options:
#   --only DIST             (base, repeatable) install only these distributions from <packages_dir>
#   --entry-point GROUP:NAME  (repeatable) an entry point that must load afterwards
#
# The manifest (<packages_dir>/.brics-packages, or <manifest> for dev) is written by
# `brics-env resources`: "<entry> <distribution> <version or ->" lines. A version there is what
# the package must install as; for packages that take their version from git (setuptools-scm) it
# is handed to the build as SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<NAME>, for this script's pip only,
# so no git and no history are needed in the image.
#
# After installing, check-python-install.py checks every distribution that was installed: not
# 0.0.0, the version asked for, its modules import, its console scripts start. Problems are
# printed as "<tool>: FAILED: ..." lines, which `brics-env resources` repeats.
#
# <python> is a command (looked up on PATH) or the interpreter of a venv. brics-env stages this
# file, apt-install-missing.sh and check-python-install.py into each build context from
# build_helpers/ in the repository; the images keep them in /usr/local/lib/brics-build/.
set -eu

here=$(dirname "$0")

die() {
  echo "install-python-packages: FAILED: $*" >&2
  exit 1
}

[ $# -ge 3 ] || die "usage: $0 base <python> <packages_dir> <requirement> [options] | dev <python> <source_tree> <manifest> [options]"
mode=$1
python=$2
shift 2

# An empty PIP_INDEX_URL (the build arg's default) would make pip use no index at all.
if [ -z "${PIP_INDEX_URL:-}" ]; then
  unset PIP_INDEX_URL
fi
# The index's user name and password, when its URL had them: brics-env hands them to the build as
# the secret pip_netrc (a netrc file, mounted by `RUN --mount=type=secret,id=pip_netrc` for the pip
# steps only), never in PIP_INDEX_URL, a build argument that the image's history keeps.
if [ -f /run/secrets/pip_netrc ]; then
  export NETRC=/run/secrets/pip_netrc
fi
# A build has no one to type a password: a refused login fails instead of waiting for input.
export PIP_NO_INPUT=1
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian and Ubuntu mark their system interpreter as externally managed (PEP 668), so pip refuses to
# install into it unless told to; a venv never carries the marker, so this only affects system installs.
if "$python" -c 'import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(marker) else 1)'; then
  export PIP_BREAK_SYSTEM_PACKAGES=1
fi

scratch=$(mktemp -d)
bridge_pth=""
remove_bridge() {
  if [ -n "$bridge_pth" ]; then
    rm -f "$bridge_pth"
    bridge_pth=""
  fi
}
cleanup() {
  remove_bridge
  rm -rf "$scratch"
}
trap cleanup EXIT

# Building without isolation needs the build backend (setuptools, and setuptools-scm for packages
# that take their version from git) importable by <python>. A fresh venv lacks them while the base
# interpreter may have them (e.g. Debian's python3-setuptools): for the install only, let the venv
# see the base interpreter's packages, after its own. Removed before the checks run.
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

# Whether any of the given source trees takes its version from git.
needs_scm() {
  for t in "$@"; do
    if [ -f "$t/pyproject.toml" ] && grep -Eq 'setuptools[-_]scm' "$t/pyproject.toml"; then
      return 0
    fi
    if [ -f "$t/setup.py" ] && grep -q 'use_scm_version' "$t/setup.py"; then
      return 0
    fi
  done
  return 1
}

# setuptools-scm importable by the build, and new enough for `version_file` (setuptools-scm 8;
# Debian 12 has 7.1, which ignores the key and installs a package whose _version.py is missing).
ensure_scm() {
  if ! "$python" -c 'import setuptools_scm' 2>/dev/null; then
    echo "install-python-packages: setuptools-scm is not importable by $python; installing python3-setuptools-scm"
    sh "$here/apt-install-missing.sh" ":python3-setuptools-scm" ||
      die "these packages take their version from git and need setuptools-scm, which this base lacks and cannot install: $*"
    "$python" -c 'import setuptools_scm' 2>/dev/null ||
      die "setuptools-scm is still not importable by $python after installing python3-setuptools-scm: $*"
  fi
  for t in "$@"; do
    if [ -f "$t/pyproject.toml" ] && grep -Eq '^[[:space:]]*version_file[[:space:]]*=' "$t/pyproject.toml"; then
      "$python" -c 'import sys
from importlib.metadata import version
sys.exit(0 if int(version("setuptools-scm").split(".")[0]) >= 8 else 1)' ||
        die "$t uses setuptools-scm's version_file, which needs setuptools-scm 8 or later; this base has $("$python" -c 'from importlib.metadata import version; print(version("setuptools-scm"))'). Use a newer base, or provide wheels"
    fi
  done
}

# pip needs git for a git+ requirement, or for a clone's version when none is given; fetch it only then.
ensure_git() {
  if ! command -v git >/dev/null 2>&1; then
    sh "$here/apt-install-missing.sh" git:git
  fi
}

# Exports the manifest's versions as setuptools-scm's per-distribution overrides (validated: they
# come from a file in the build context).
export_versions() {
  [ -f "$1" ] || return 0
  while read -r m_entry m_dist m_version || [ -n "${m_entry:-}" ]; do
    case "$m_entry" in "" | "#"*) continue ;; esac
    case "$m_dist" in "" | *[!A-Za-z0-9._-]*) die "$1: bad distribution name '$m_dist'" ;; esac
    [ "$m_version" = "-" ] && continue
    case "$m_version" in "" | *[!A-Za-z0-9.+!_-]*) die "$1: bad version '$m_version' for $m_dist" ;; esac
    suffix=$(printf '%s' "$m_dist" | tr '[:lower:]' '[:upper:]' | sed 's/[-_.][-_.]*/_/g')
    export "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_$suffix=$m_version"
    echo "install-python-packages: $m_dist must install as version $m_version"
  done <"$1"
}

# The distribution a manifest gives an entry (by its file name), or "" when it does not say.
manifest_dist() {
  [ -f "$1" ] || return 0
  awk -v e="$2" '$1 == e { print $2; exit }' "$1"
}

normalise() {
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | sed 's/[-_.][-_.]*/-/g'
}

snapshot() {
  "$python" "$here/check-python-install.py" snapshot "$scratch/before.json"
}

verify() {
  remove_bridge
  "$python" "$here/check-python-install.py" verify "$scratch/before.json" "$@"
}

pip_install() {
  "$python" -m pip install --no-cache-dir "$@"
}

only=""
entry_points=""
parse_options() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --only) [ $# -ge 2 ] || die "--only needs a distribution name"; only="$only $(normalise "$2")"; shift 2 ;;
      --entry-point) [ $# -ge 2 ] || die "--entry-point needs GROUP:NAME"; entry_points="$entry_points $2"; shift 2 ;;
      *) die "unknown option '$1'" ;;
    esac
  done
}

check_args() {
  set --
  for ep in $entry_points; do
    set -- "$@" --entry-point "$ep"
  done
  [ -n "${manifest:-}" ] && set -- "$@" --manifest "$manifest"
  verify "$@"
}

case "$mode" in
  base)
    [ $# -ge 2 ] || die "usage: $0 base <python> <packages_dir> <requirement> [options]"
    packages_dir=$1
    requirement=$2
    shift 2
    parse_options "$@"
    manifest="$packages_dir/.brics-packages"
    # Installable entries only: wheels, sdists, and source trees (pyproject.toml or setup.py).
    # Anything else (.keep, READMEs, tests next to the trees) is ignored; dot-files never match the glob.
    set --
    trees=""
    any=""
    for entry in "$packages_dir"/*; do
      name=${entry##*/}
      case "$entry" in
        *.whl | *.tar.gz | *.zip) [ -f "$entry" ] || continue ;;
        *)
          if [ ! -f "$entry/pyproject.toml" ] && [ ! -f "$entry/setup.py" ]; then
            [ -e "$entry" ] && echo "install-python-packages: ignoring $entry (not a wheel, sdist or source tree)"
            continue
          fi
          ;;
      esac
      any=yes
      if [ -n "$only" ]; then
        dist=$(manifest_dist "$manifest" "$name")
        dist=$(normalise "${dist:-$name}")
        case " $only " in *" $dist "*) ;; *) echo "install-python-packages: not for this image: $entry"; continue ;; esac
      fi
      set -- "$@" "$entry"
      [ -d "$entry" ] && trees="$trees $entry"
    done
    if [ $# -gt 0 ]; then
      echo "install-python-packages: installing from $packages_dir (offline): $*"
      export_versions "$manifest"
      bridge_build_backend
      # shellcheck disable=SC2086 # one word per tree
      if needs_scm $trees; then ensure_scm $trees; fi
      snapshot
      pip_install --no-index --no-deps --no-build-isolation "$@" || die "pip could not install $* (offline, without build isolation)"
      check_args
    elif [ -n "$any" ]; then
      die "$packages_dir holds packages, but none of:$only"
    else
      [ -n "$requirement" ] || die "no packages in $packages_dir and no requirement given"
      echo "install-python-packages: installing $requirement"
      case "$requirement" in
        *git+*) ensure_git ;;
      esac
      manifest=""
      snapshot
      pip_install "$requirement" || die "pip could not install $requirement"
      check_args
    fi
    ;;
  dev)
    [ $# -ge 2 ] || die "usage: $0 dev <python> <source_tree> <manifest> [options]"
    tree=$1
    manifest=$2
    shift 2
    parse_options "$@"
    [ -d "$tree" ] || die "$tree is not a directory (is the dev repository cloned into _dev_build_data?)"
    export_versions "$manifest"
    # Without a version from brics-env, setuptools-scm reads the clone itself and needs git.
    if [ -d "$tree/.git" ] && ! awk 'NF == 3 && $3 != "-" { found = 1 } END { exit !found }' "$manifest" 2>/dev/null; then
      ensure_git
    fi
    bridge_build_backend
    if needs_scm "$tree"; then ensure_scm "$tree"; fi
    echo "install-python-packages: reinstalling from $tree"
    snapshot
    # Offline first (the backend is usually present); a build needing backend plugins the image lacks
    # can still succeed with isolation when an index is reachable.
    if ! pip_install --no-index --no-deps --no-build-isolation --force-reinstall "$tree"; then
      echo "install-python-packages: offline build failed; retrying with build isolation" >&2
      pip_install --no-deps --force-reinstall "$tree" || die "pip could not install $tree"
    fi
    check_args
    ;;
  *)
    die "unknown mode '$mode' (expected base or dev)"
    ;;
esac
