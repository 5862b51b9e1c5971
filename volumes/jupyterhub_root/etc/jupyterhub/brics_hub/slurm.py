"""
The commands batchspawner runs to drive Slurm over ssh, and the batch script it submits.

Every command runs as
    ssh ... jupyterspawner@<sshHostname> sudo -u <USER>.<PROJECT> [VAR=value ...] <slurmspawner_wrappers script>
(exec_prefix is the ssh part) and the jupyterspawner account's sudo policy allows exactly the three
wrapper scripts.

Secrets never travel on a command line: the Hub API token reaches the Slurm host in ssh's
environment (SendEnv; the host's sshd accepts exactly those names for jupyterspawner, see
brics_slurm/sshd_config.d/jupyterspawner.conf), and sudo's env_keep lets it through to sbatch.
The other variables the job needs are not secret and are passed as sudo's VAR=value arguments.
"""

import re
import shlex

SRV_DIR = "/srv/jupyterhub"
SSH_KEY_FILE = f"{SRV_DIR}/ssh_key"
SSH_USER = "jupyterspawner"
SSH_CONNECT_TIMEOUT_S = 20

# Printed by the query command when ssh itself fails (exit 255): see batch_query_cmd below.
SSH_FAILED_MARKER = "BRICS_SLURM_HOST_UNREACHABLE"
# Printed by the submit command when it fails, with the exit status (failures.py reads it).
SUBMIT_FAILED_MARKER = "BRICS_SUBMIT_EXIT_STATUS"
# Printed by the Slurm host's shell when the API token did not arrive (sshd without AcceptEnv).
TOKEN_NOT_RECEIVED_MARKER = "BRICS_TOKEN_NOT_RECEIVED"
SUBMIT_SCRIPT = "slurmspawner_sbatch"

# Carried in ssh's environment, never on a command line (JupyterHub sets both to the API token).
SENT_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
# Any other variable whose name says it is a secret is not passed at all: the sshd of the Slurm
# host accepts only SENT_ENV, and a command line is readable by every user of that host.
_LOOKS_SECRET = re.compile(r"TOKEN|SECRET|PASSW|PRIVATE|CRYPT", re.I)
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def argv_variables(keepvars):
    """The keepvars passed as sudo's VAR=value arguments: every valid name that is neither carried
    in ssh's environment nor looks like a secret. Returns (passed, dropped)."""
    passed, dropped = [], []
    for name in (v for v in keepvars.split(",") if v):
        if name in SENT_ENV:
            continue
        if _LOOKS_SECRET.search(name) or not _VARIABLE_NAME.fullmatch(name):
            dropped.append(name)
        else:
            passed.append(name)
    return passed, dropped


def ssh_exec_prefix(hostname):
    """batchspawner prepends this to every command. BatchMode: never prompt; StrictHostKeyChecking:
    only the host key from the Secret (/etc/ssh/ssh_known_hosts) is trusted; SendEnv: the token."""
    return " ".join(
        [
            "ssh",
            f"-i {SSH_KEY_FILE}",
            "-o BatchMode=yes",
            "-o StrictHostKeyChecking=yes",
            f"-o ConnectTimeout={SSH_CONNECT_TIMEOUT_S}",
            *(f"-o SendEnv={name}" for name in SENT_ENV),
            shlex.quote(f"{SSH_USER}@{hostname}"),
        ]
    )


# The per-spawn values come from the spawner (spawner.py get_req_subvars), validated and quoted for
# both shells they cross (quoted_for_both_shells): {{brics_account}} is the job's <USER>.<PROJECT>,
# {{brics_job_id}} the job id (digits only).
_SUDO = "sudo -u {{brics_account}}"

# A Slurm job id as sbatch --parsable prints it; only this ever reaches a command.
JOB_ID = re.compile(r"[0-9]{1,20}")


def quoted_for_both_shells(word):
    """`word` as the hub's `sh -c` must see it so that the Slurm host's shell, which runs what ssh
    joined with spaces, gets exactly `word` as one argument."""
    return shlex.quote(shlex.quote(word))

# Each variable in {{brics_argv_vars}} (spawner.py: argv_variables of the keepvars) crosses two
# shells: the hub's local `sh -c` (which runs ssh) and, after ssh has joined its arguments with
# spaces, the remote login shell (`bash -c`). Locally, "$VAR" expands to the value, which sed turns
# into one single-quoted word for the remote shell ( ' -> '\'' ); the surrounding double quotes keep
# it one argument locally. The remote shell then removes exactly that quoting, so spaces, quotes,
# $, backslashes and newlines arrive intact. (Trailing newlines of a value are lost to command
# substitution.)
KEEPVAR_ARG_TEMPLATE = r""""{{var}}=$(printf '%s' "${{var}}" | sed "s/'/'\\\\''/g;1s/^/'/;\$s/\$/'/")" """


def batch_submit_cmd(wrappers_bin):
    """batchspawner keeps only a failed command's stderr, so the exit status (255: ssh itself
    failed) is added to it locally, after everything the remote side printed. Before sudo, the Slurm
    host's shell checks that the token arrived: without it the job would start and its server could
    never reach the hub."""
    token_check = shlex.quote(
        f'if [ -z "${{{SENT_ENV[0]}-}}" ]; then echo "{TOKEN_NOT_RECEIVED_MARKER}" >&2; exit 97; fi;'
    )
    return (
        f"{token_check} {_SUDO} "
        "{% for var in brics_argv_vars %}" + KEEPVAR_ARG_TEMPLATE + "{% endfor %}"
        f"{quoted_for_both_shells(wrappers_bin + '/' + SUBMIT_SCRIPT)}"
        f' || {{ rc=$?; echo "{SUBMIT_FAILED_MARKER}=$rc" >&2; exit "$rc"; }}'
    )


# slurmspawner_squeue/scancel take the job id from SLURMSPAWNER_JOB_ID (a number from sbatch).
#
# batchspawner (>= 1.3) reads a failed query's stderr as the job status and classifies it:
# state_running_re / state_pending_re -> job alive, state_unknown_re -> "unknown" (poll() keeps the
# server, start() keeps waiting), anything else -> "not found" (the server is dropped as dead).
# A dropped ssh connection must not kill a user's session, so when ssh itself fails (exit status
# 255, which neither sudo nor the wrappers use) the command adds a marker line to stderr that
# state_unknown_re matches, and keeps the exit status. A real "job not found" (squeue prints
# nothing, or `slurm_load_jobs error: Invalid job id specified`) still reads as gone.
def batch_query_cmd(wrappers_bin):
    return (
        f"{_SUDO} SLURMSPAWNER_JOB_ID={{{{brics_job_id}}}} {quoted_for_both_shells(wrappers_bin + '/slurmspawner_squeue')}"
        ' || { rc=$?; if [ "$rc" -eq 255 ]; then'
        f' echo "{SSH_FAILED_MARKER}: ssh to the Slurm host failed (exit status 255)" >&2;'
        ' fi; exit "$rc"; }'
    )


def batch_cancel_cmd(wrappers_bin):
    return f"{_SUDO} SLURMSPAWNER_JOB_ID={{{{brics_job_id}}}} {quoted_for_both_shells(wrappers_bin + '/slurmspawner_scancel')}"


# SlurmSpawner's own unknown states (controller not answering) plus the ssh failure marker; (?m)
# because ssh's own error message comes first on stderr.
STATE_UNKNOWN_RE = (
    r"(?m)^(?:slurm_load_jobs error: (?:Socket timed out on send/recv|Unable to contact slurm controller)"
    rf"|{SSH_FAILED_MARKER}\b)"
)


def batch_script(slurm):
    """The job script. The pod's single-node Slurm has no GPUs, so --gpus is for external Slurm only.

    Note: an --export list without ALL makes Slurm load the user's login environment on the node
    (as --get-user-env does), which Slurm 24.11's slurmd does in a new namespace: a containerised
    Slurm on 24.11 needs CAP_SYS_ADMIN for any job spawned here.
    """
    body = (
        "#!/bin/bash\n"
        "#SBATCH --output={{homedir}}/jupyterhub_slurmspawner_%j.log\n"
        "#SBATCH --job-name=spawner-jupyterhub\n"
        "#SBATCH --chdir={{homedir}}\n"
        "#SBATCH --export={{keepvars}}\n"
        "#SBATCH --get-user-env\n"
        "{% if partition %}#SBATCH --partition={{partition}}\n{% endif %}"
        "{% if runtime %}#SBATCH --time={{runtime}}\n{% endif %}"
        "{% if memory %}#SBATCH --mem={{memory}}\n{% endif %}"
        "{% if gres %}#SBATCH --gres={{gres}}\n{% endif %}"
    )
    if slurm == "external":
        body += "{% if ngpus %}#SBATCH --gpus={{ngpus}}\n{% endif %}"
    body += (
        "{% if nprocs %}#SBATCH --cpus-per-task={{nprocs}}\n{% endif %}"
        "{% if reservation %}#SBATCH --reservation={{reservation}}\n{% endif %}"
        "{% if options %}#SBATCH {{options}}\n{% endif %}"
    )
    body += """
set -euo pipefail

source "${JUPYTERHUB_BRICS_CONDA_PREFIX_DIR}/bin/activate" jupyter-user-env
export JUPYTER_PATH="${JUPYTERHUB_BRICS_JUPYTER_DATA_DIR}${JUPYTER_PATH:+:${JUPYTER_PATH}}"

trap 'echo SIGTERM received' TERM
{{prologue}}
{% if srun %}{{srun}} {% endif %}{{cmd}}
echo "jupyterhub-singleuser ended gracefully"
{{epilogue}}
"""
    return body
