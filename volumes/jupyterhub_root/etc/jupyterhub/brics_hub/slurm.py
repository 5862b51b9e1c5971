"""
The commands batchspawner runs to drive Slurm over ssh, how their answers are read, and the batch
script it submits.

Every command runs in the hub container's `sh -c` as

    timeout ... ssh <options> jupyterspawner@<sshHostname> sudo -u <USER>.<PROJECT> [VAR=value ...] <wrapper>

and the jupyterspawner account's sudo policy allows exactly the three wrapper scripts, without
arguments. The templates hold the whole command (batchspawner's exec_prefix is empty), because the
query's answer is looked at in the hub's shell before batchspawner reads it.

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

# ssh can never hang: connecting (TCP and the banner exchange) is bounded by ConnectTimeout, a
# connection that stops answering is dropped after ServerAliveInterval * ServerAliveCountMax, and
# the whole command, remote part included, by `timeout` (TERM, then KILL).
SSH_CONNECT_TIMEOUT_S = 10
SSH_SERVER_ALIVE_INTERVAL_S = 10
SSH_SERVER_ALIVE_COUNT_MAX = 3
SLURM_COMMAND_TIMEOUT_S = 90
SLURM_COMMAND_KILL_AFTER_S = 5
# What `timeout` exits with when it ended the command (TERM, or KILL after KILL_AFTER).
TIMED_OUT_EXIT_STATUSES = (124, 137)

# Printed to stderr by the commands when they fail, with the exit status (failures.py and the
# hub's log read them; 255: ssh itself failed).
SUBMIT_FAILED_MARKER = "BRICS_SUBMIT_EXIT_STATUS"
QUERY_FAILED_MARKER = "BRICS_QUERY_EXIT_STATUS"
CANCEL_FAILED_MARKER = "BRICS_CANCEL_EXIT_STATUS"
# Printed by the Slurm host's shell when the API token did not arrive (sshd without AcceptEnv).
TOKEN_NOT_RECEIVED_MARKER = "BRICS_TOKEN_NOT_RECEIVED"
# Printed by the query when the wrapper succeeded but squeue listed nothing for the job id.
NOT_IN_QUEUE_MARKER = "BRICS_JOB_NOT_IN_QUEUE"
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


def ssh_command(hostname):
    """How every command reaches the Slurm host. BatchMode: never prompt; StrictHostKeyChecking: only
    the host key from the Secret (/etc/ssh/ssh_known_hosts) is trusted; SendEnv: the token."""
    return " ".join(
        [
            f"timeout -k {SLURM_COMMAND_KILL_AFTER_S} {SLURM_COMMAND_TIMEOUT_S}",
            "ssh",
            f"-i {SSH_KEY_FILE}",
            "-o BatchMode=yes",
            "-o StrictHostKeyChecking=yes",
            f"-o ConnectTimeout={SSH_CONNECT_TIMEOUT_S}",
            f"-o ServerAliveInterval={SSH_SERVER_ALIVE_INTERVAL_S}",
            f"-o ServerAliveCountMax={SSH_SERVER_ALIVE_COUNT_MAX}",
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


def _on_failure(marker):
    # batchspawner keeps only a failed command's stderr: add the exit status to it, after
    # everything the remote side printed.
    return f' || {{ rc=$?; echo "{marker}=$rc" >&2; exit "$rc"; }}'


def batch_submit_cmd(hostname, wrappers_bin):
    """Before sudo, the Slurm host's shell checks that the token arrived: without it the job would
    start and its server could never reach the hub."""
    token_check = shlex.quote(
        f'if [ -z "${{{SENT_ENV[0]}-}}" ]; then echo "{TOKEN_NOT_RECEIVED_MARKER}" >&2; exit 97; fi;'
    )
    return (
        f"{ssh_command(hostname)} {token_check} {_SUDO} "
        "{% for var in brics_argv_vars %}" + KEEPVAR_ARG_TEMPLATE + "{% endfor %}"
        f"{quoted_for_both_shells(wrappers_bin + '/' + SUBMIT_SCRIPT)}" + _on_failure(SUBMIT_FAILED_MARKER)
    )


def _job_command(hostname, wrappers_bin, script):
    # slurmspawner_squeue/scancel take the job id from SLURMSPAWNER_JOB_ID.
    wrapper = quoted_for_both_shells(f"{wrappers_bin}/{script}")
    return f"{ssh_command(hostname)} {_SUDO} SLURMSPAWNER_JOB_ID={{{{brics_job_id}}}} {wrapper}"


def batch_query_cmd(hostname, wrappers_bin):
    """An empty answer from a query that succeeded becomes NOT_IN_QUEUE_MARKER here, so that an
    empty job status can only mean that nothing was learnt (see job_gone)."""
    return (
        f"out=$({_job_command(hostname, wrappers_bin, 'slurmspawner_squeue')})"
        + _on_failure(QUERY_FAILED_MARKER)
        + f"; printf '%s\\n' \"${{out:-{NOT_IN_QUEUE_MARKER}}}\""
    )


def batch_cancel_cmd(hostname, wrappers_bin):
    return _job_command(hostname, wrappers_bin, "slurmspawner_scancel") + _on_failure(CANCEL_FAILED_MARKER)


# Job states after which the job no longer runs (Slurm's "finished" base states).
TERMINAL_STATES = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT"}
)
_INVALID_JOB_ID = re.compile(r"^slurm_load_jobs error: Invalid job id specified\s*$", re.M)


def job_gone(job_status):
    """Whether what the query returned (batchspawner's job_status: the command's stdout, or its
    stderr when it failed) says for certain that the job is gone: squeue listed nothing for it,
    Slurm does not know its id, or it is in a terminal state. Anything else (ssh, sudo or a wrapper
    failing, the controller not answering, SUSPENDED, REQUEUED, an empty status) is not knowing,
    and the server is kept."""
    text = job_status.strip()
    if text == NOT_IN_QUEUE_MARKER:
        return True
    if "\n" not in text and text.split(" ", 1)[0] in TERMINAL_STATES:
        return True
    return bool(_INVALID_JOB_ID.search(text))


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
