"""
A fake Slurm host for the spawner's commands: `ssh` hands the remote command to `bash -c` the way
sshd does (its arguments joined with spaces), with only the variables named by `-o SendEnv` that
the host's sshd accepts (AcceptEnv: FAKE_ACCEPTENV, by default the names brics_slurm's sshd
drop-in accepts); `sudo` (env_reset with the env_keep of brics_slurm/jupyterspawner_sudoers, plus
VAR=value arguments) runs the wrapper scripts, which record what reached them. ssh and sudo record
their command lines. Each can fail the way the real one does, chosen by FAKE_* variables in the
hub-side environment: ssh cannot connect (exit 255), sudo refuses or does not know the account, a
wrapper is missing, crashes, or sbatch rejects the job.
"""

import pytest

FAKE_SSH = r"""#!/bin/bash
# Fake ssh: check the options the hub must use, then run the command as sshd does: `bash -c "<args joined by spaces>"`,
# in an environment of its own plus the SendEnv variables sshd accepts.
set -eu
printf '%s\n' "$@" > "$FAKE_DIR/ssh_args"
accepted=${FAKE_ACCEPTENV-JUPYTERHUB_API_TOKEN JPY_API_TOKEN}
sent=()
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    -o)
      if [[ $2 == SendEnv=* ]]; then
        name=${2#SendEnv=}
        if [[ " $accepted " == *" $name "* && -n ${!name+x} ]]; then sent+=("$name=${!name}"); fi
      fi
      shift 2 ;;
    -i|-p|-l) shift 2 ;;
    *) shift ;;
  esac
done
dest=$1; shift
if [[ -n ${FAKE_SSH_FAIL:-} ]]; then
  echo "ssh: connect to host ${dest#*@} port 22: Connection refused" >&2
  exit 255
fi
if [[ -n ${FAKE_SSH_HANG:-} ]]; then
  # A half-open connection: nothing ever answers.
  exec sleep 600
fi
exec env -i PATH="$PATH" USER=jupyterspawner HOME=/home/jupyterspawner SHELL=/bin/bash FAKE_DIR="$FAKE_DIR" \
  FAKE_SQUEUE="${FAKE_SQUEUE:-}" FAKE_SUDO="${FAKE_SUDO:-}" FAKE_SBATCH="${FAKE_SBATCH:-}" "${sent[@]}" bash -c "$*"
"""

FAKE_SUDO = r"""#!/bin/bash
# Fake sudo -u USER [VAR=value...] COMMAND, with sudo 1.9's messages: environment reset to what
# env_keep keeps of the caller's and the VAR=value arguments; a missing command is "command not found".
set -eu
printf '%s\n' "$@" > "$FAKE_DIR/sudo_args"
[[ $1 == -u ]] || { echo "fake sudo: expected -u" >&2; exit 1; }
target=$2; shift 2
vars=()
while IFS= read -r -d '' entry; do
  case ${entry%%=*} in
    SLURMSPAWNER_JOB_ID|JUPYTERHUB_*|JPY_API_TOKEN|USER|HOME|SHELL) vars+=("$entry") ;;
  esac
done < <(env -0)
while [[ $# -gt 0 && $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do vars+=("$1"); shift; done
case ${FAKE_SUDO:-} in
  refuse) echo "Sorry, user jupyterspawner is not allowed to execute '$*' as $target on slurm-host." >&2; exit 1 ;;
  password) echo "sudo: a password is required" >&2; exit 1 ;;
  unknown-user) echo "sudo: unknown user $target" >&2; echo "sudo: error initializing audit plugin sudoers_audit" >&2; exit 1 ;;
esac
[[ -x $1 ]] || { echo "sudo: $1: command not found" >&2; exit 1; }
# The policy allows the wrappers without arguments only ("").
[[ $# -eq 1 ]] || { echo "sudo: a password is required" >&2; exit 1; }
echo "$target" > "$FAKE_DIR/sudo_user"
exec env -i FAKE_DIR="$FAKE_DIR" FAKE_SQUEUE="${FAKE_SQUEUE:-}" FAKE_SBATCH="${FAKE_SBATCH:-}" "${vars[@]}" "$@"
"""

# slurmspawner_sbatch and the sbatch it runs, in one: sbatch's stderr and exit status pass through.
FAKE_SBATCH = r"""#!/usr/bin/env python3
import json, os, sys
mode = os.environ.get("FAKE_SBATCH", "")
if mode == "crash":
    import slurmspawner_wrappers._version  # noqa: F401  (a wrapper built without its version file)
if mode == "reject":
    sys.stderr.write("sbatch: error: Batch job submission failed: Invalid partition name specified\n")
    sys.exit(1)
d = os.environ["FAKE_DIR"]
env = {k: v for k, v in os.environ.items() if k not in ("FAKE_DIR", "FAKE_SQUEUE", "FAKE_SBATCH", "PWD", "SHLVL", "_", "LC_CTYPE")}
json.dump({"env": env, "argv": sys.argv[1:], "script": sys.stdin.read()}, open(os.path.join(d, "sbatch.json"), "w"))
if mode != "no-id":
    print("4242")
"""

FAKE_SQUEUE = r"""#!/bin/bash
job=${SLURMSPAWNER_JOB_ID:?SLURMSPAWNER_JOB_ID not set}
echo "$job" > "$FAKE_DIR/squeue_job"
case ${FAKE_SQUEUE:-running} in
  running) echo "RUNNING node1" ;;
  pending) echo "PENDING " ;;
  suspended) echo "SUSPENDED node1" ;;
  requeued) echo "REQUEUED " ;;
  completed) echo "COMPLETED node1" ;;
  gone) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1 ;;
  finished) ;;
  zero-bytes) echo "slurm_load_jobs error: Zero Bytes were transmitted or received" >&2; exit 1 ;;
  standby) echo "slurm_load_jobs error: Slurm backup controller in standby mode" >&2; exit 1 ;;
  no-controller) echo "slurm_load_jobs error: Unable to contact slurm controller (connect failure)" >&2; exit 1 ;;
  traceback) printf 'Traceback (most recent call last):\n  File "x", line 1, in <module>\nModuleNotFoundError: No module named slurmspawner_wrappers\n' >&2; exit 1 ;;
  silent-failure) exit 3 ;;
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
