"""
A fake Slurm host for the spawner's commands: `ssh` hands the remote command to `bash -c` the way
sshd does (its arguments joined with spaces); `sudo` (env_reset: only VAR=value arguments survive)
runs the wrapper scripts, which record what reached them.
"""

import pytest

FAKE_SSH = r"""#!/bin/bash
# Fake ssh: check the options the hub must use, then run the command as sshd does: `bash -c "<args joined by spaces>"`.
set -eu
printf '%s\n' "$@" > "$FAKE_DIR/ssh_args"
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    -i|-o|-p|-l) shift 2 ;;
    *) shift ;;
  esac
done
dest=$1; shift
if [[ -n ${FAKE_SSH_FAIL:-} ]]; then
  echo "ssh: connect to host ${dest#*@} port 22: Connection refused" >&2
  exit 255
fi
exec env -i PATH="$PATH" FAKE_DIR="$FAKE_DIR" FAKE_SQUEUE="${FAKE_SQUEUE:-}" bash -c "$*"
"""

FAKE_SUDO = r"""#!/bin/bash
# Fake sudo -u USER [VAR=value...] COMMAND: environment reset to the VAR=value arguments only.
set -eu
[[ $1 == -u ]] || { echo "fake sudo: expected -u" >&2; exit 1; }
target=$2; shift 2
vars=()
while [[ $# -gt 0 && $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do vars+=("$1"); shift; done
echo "$target" > "$FAKE_DIR/sudo_user"
exec env -i FAKE_DIR="$FAKE_DIR" FAKE_SQUEUE="${FAKE_SQUEUE:-}" "${vars[@]}" "$@"
"""

FAKE_SBATCH = r"""#!/usr/bin/env python3
import json, os, sys
d = os.environ["FAKE_DIR"]
env = {k: v for k, v in os.environ.items() if k not in ("FAKE_DIR", "FAKE_SQUEUE", "PWD", "SHLVL", "_", "LC_CTYPE")}
json.dump({"env": env, "argv": sys.argv[1:], "script": sys.stdin.read()}, open(os.path.join(d, "sbatch.json"), "w"))
print("4242")
"""

FAKE_SQUEUE = r"""#!/bin/bash
job=${SLURMSPAWNER_JOB_ID:?SLURMSPAWNER_JOB_ID not set}
echo "$job" > "$FAKE_DIR/squeue_job"
case ${FAKE_SQUEUE:-running} in
  running) echo "RUNNING node1" ;;
  pending) echo "PENDING " ;;
  gone) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1 ;;
  finished) ;;
esac
"""

FAKE_SCANCEL = r"""#!/bin/bash
echo "${SLURMSPAWNER_JOB_ID:?}" > "$FAKE_DIR/scancel_job"
"""


@pytest.fixture
def fake_remote(tmp_path):
    fake_bin = tmp_path / "bin"
    wrappers = tmp_path / "wrappers"
    fake_bin.mkdir()
    wrappers.mkdir()
    for path, text in (
        (fake_bin / "ssh", FAKE_SSH),
        (fake_bin / "sudo", FAKE_SUDO),
        (wrappers / "slurmspawner_sbatch", FAKE_SBATCH),
        (wrappers / "slurmspawner_squeue", FAKE_SQUEUE),
        (wrappers / "slurmspawner_scancel", FAKE_SCANCEL),
    ):
        path.write_text(text)
        path.chmod(0o755)
    return tmp_path
