"""
Spawn failures the hub can explain, as one sentence for the user (what failed, whom to tell); the
detail goes to the hub's log.

batchspawner raises RuntimeError(<stderr of the command>) when the submit command fails; the submit
command (slurm.py) appends its exit status to that stderr. JupyterHub shows an exception's
`jupyterhub_message` on the progress and spawn-pending pages. A spawn that fails within a second of
the request is shown on the spawn form (as str() of the exception) or on an error page (an
HTTPError's message); anything but an HTTPError becomes "Unhandled error starting server" there.
So the failure is an HTTPError that carries the sentence and reads as it.
"""

import re

from tornado import web

from . import slurm
from .slurm import SENT_ENV, SSH_USER, SUBMIT_FAILED_MARKER, SUBMIT_SCRIPT, TIMED_OUT_EXIT_STATUSES, TOKEN_NOT_RECEIVED_MARKER

TELL_ADMINS = "please tell the service's administrators"
NOT_STARTED = "so your server was not started"


class SpawnFailed(web.HTTPError):
    def __init__(self, message, status_code=503):
        super().__init__(status_code, "%s", message)
        self.jupyterhub_message = message

    def __str__(self):
        return self.jupyterhub_message

    # JupyterHub's User.spawn sets `reason` on the exception of a failed spawn, which makes its
    # error page replace the message with a generic one ("Failed to start your server on the last
    # attempt"); tornado would also use it as the HTTP reason phrase. Keep the sentence instead.
    @property
    def reason(self):
        return None

    @reason.setter
    def reason(self, value):
        pass


_EXIT_STATUS = re.compile(rf"^{SUBMIT_FAILED_MARKER}=(\d+)$", re.M)
# sudo's own refusals (sudo 1.9): no rule for the user or command, or a password would be needed.
_SUDO_REFUSED = re.compile(
    r"^(?:sudo: .*(?:a password is required|not allowed to|not in the sudoers|a terminal is required)"
    r"|Sorry, user .* is not allowed to execute)",
    re.M,
)
_TOKEN_NOT_RECEIVED = re.compile(rf"^{TOKEN_NOT_RECEIVED_MARKER}$", re.M)
_SUDO_UNKNOWN_USER = re.compile(r"^sudo: unknown user", re.M)
_COMMAND_NOT_FOUND = re.compile(rf"^sudo: \S*{SUBMIT_SCRIPT}: command not found$", re.M)
_SBATCH_ERROR = re.compile(r"^sbatch: error: (?:Batch job submission failed: )?(.+)$", re.M)


def _exit_status(stderr):
    status = _EXIT_STATUS.search(stderr)
    return int(status.group(1)) if status else None


def submit_timed_out(stderr):
    """Whether the submit command was ended by its timeout (sbatch may have submitted the job all the same)."""
    return _exit_status(stderr) in TIMED_OUT_EXIT_STATUSES


def submit_failure(stderr, account):
    """The SpawnFailed for a failed submit command, from what batchspawner kept of it (stderr)."""
    exit_status = _exit_status(stderr)
    if exit_status == 255:
        return SpawnFailed(f"The hub could not connect to the Slurm host over SSH, {NOT_STARTED}; {TELL_ADMINS}.")
    if exit_status in TIMED_OUT_EXIT_STATUSES:
        return SpawnFailed(f"The Slurm host did not answer within {slurm.SLURM_COMMAND_TIMEOUT_S} s, {NOT_STARTED}; {TELL_ADMINS}.")
    if _TOKEN_NOT_RECEIVED.search(stderr):
        return SpawnFailed(
            f"The Slurm host's SSH server did not accept the hub's API token (it needs AcceptEnv {' '.join(SENT_ENV)} "
            f"for {SSH_USER}), {NOT_STARTED}; {TELL_ADMINS}."
        )
    if _SUDO_UNKNOWN_USER.search(stderr):
        return SpawnFailed(f"Your project account {account} does not exist on the Slurm host, {NOT_STARTED}; {TELL_ADMINS}.")
    if _SUDO_REFUSED.search(stderr):
        return SpawnFailed(
            f"The Slurm host refused to let the hub submit jobs as {account} (sudo), {NOT_STARTED}; {TELL_ADMINS}."
        )
    if _COMMAND_NOT_FOUND.search(stderr):
        return SpawnFailed(f"The job submission command {SUBMIT_SCRIPT} is missing on the Slurm host, {NOT_STARTED}; {TELL_ADMINS}.")
    rejected = _SBATCH_ERROR.findall(stderr)
    if rejected:
        return SpawnFailed(
            f"Slurm refused the job ({rejected[-1].strip()}), {NOT_STARTED}; check the options you chose, "
            "and if they look right, tell the service's administrators.",
            status_code=400,
        )
    return SpawnFailed(f"The job submission command {SUBMIT_SCRIPT} failed on the Slurm host, {NOT_STARTED}; {TELL_ADMINS}.")


def no_job_id():
    return SpawnFailed(f"Slurm did not return a job id for the submitted job, {NOT_STARTED}; {TELL_ADMINS}.")


def job_ended(job_id, homedir):
    where = f"{homedir}/jupyterhub_slurmspawner_{job_id}.log" if homedir else f"jupyterhub_slurmspawner_{job_id}.log"
    return SpawnFailed(
        f"Your Slurm job {job_id} ended before its Jupyter server started (its log is {where}); "
        f"if the log does not say why, {TELL_ADMINS}."
    )


def bad_account(account, rule):
    shown = repr(account) if len(repr(account)) <= 60 else repr(account)[:57] + "..."
    return SpawnFailed(
        f"The identity provider named the account {shown} for this project, which is not {rule.description}, "
        f"{NOT_STARTED}; {TELL_ADMINS}.",
        status_code=403,
    )


def bad_choice(why):
    return SpawnFailed(f"{why}, {NOT_STARTED}; choose again from the form.", status_code=400)
