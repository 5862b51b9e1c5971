"""
A poll that fails never orphans a job: only a definite answer (Slurm does not know the job, squeue
lists nothing for it, or it is in a terminal state) drops the user's server; everything else keeps
it and asks again. ssh and the commands can never hang. A stop never runs scancel without a job id.
"""

import asyncio
import logging
import time

import pytest
from conftest import JobStatus, classify, env_for
from test_spawner_commands import make_spawner, query, render, run_local

import brics_hub.slurm
from brics_hub.slurm import TERMINAL_STATES, job_gone

GONE = [
    "BRICS_JOB_NOT_IN_QUEUE",
    "slurm_load_jobs error: Invalid job id specified\nBRICS_QUERY_EXIT_STATUS=1",
    "Warning: Permanently added 'slurm' (ED25519) to the list of known hosts.\nslurm_load_jobs error: Invalid job id specified\nBRICS_QUERY_EXIT_STATUS=1",
    *(f"{state} node1" for state in sorted(TERMINAL_STATES)),
    "CANCELLED",
]
UNKNOWN = [
    # sudo failing: the account unknown (an LDAP outage), no rule, a password asked for
    "sudo: unknown user alice.proj1\nsudo: error initializing audit plugin sudoers_audit\nBRICS_QUERY_EXIT_STATUS=1",
    "sudo: a password is required\nBRICS_QUERY_EXIT_STATUS=1",
    "sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\nsudo: a password is required",
    "Sorry, user jupyterspawner is not allowed to execute '/opt/jupyter/slurmspawner_wrappers/bin/slurmspawner_squeue' as alice.proj1 on slurm.",
    # a wrapper crashing
    "Traceback (most recent call last):\n  File \"/opt/jupyter/slurmspawner_wrappers/bin/slurmspawner_squeue\", line 5, in <module>\nModuleNotFoundError: No module named 'slurmspawner_wrappers'\nBRICS_QUERY_EXIT_STATUS=1",
    "ERROR: environment variable SLURMSPAWNER_JOB_ID must be set\nBRICS_QUERY_EXIT_STATUS=1",
    # the controller not answering, or answering nothing useful
    "slurm_load_jobs error: Zero Bytes were transmitted or received\nBRICS_QUERY_EXIT_STATUS=1",
    "slurm_load_jobs error: Slurm backup controller in standby mode\nBRICS_QUERY_EXIT_STATUS=1",
    "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\nBRICS_QUERY_EXIT_STATUS=1",
    "slurm_load_jobs error: Socket timed out on send/recv operation\nBRICS_QUERY_EXIT_STATUS=1",
    # ssh failing or hanging until the timeout
    "ssh: connect to host slurm port 22: Connection refused\nBRICS_QUERY_EXIT_STATUS=255",
    "Connection timed out during banner exchange\nConnection to 10.0.0.5 port 22 timed out\nBRICS_QUERY_EXIT_STATUS=255",
    "BRICS_QUERY_EXIT_STATUS=124",
    "BRICS_QUERY_EXIT_STATUS=137",
    # states in which the job lives on
    "SUSPENDED node1",
    "REQUEUED ",
    "REQUEUE_HOLD ",
    "REQUEUE_FED ",
    "RESIZING node1",
    "SIGNALING node1",
    "STOPPED node1",
    "STAGE_OUT node1",
    "SPECIAL_EXIT ",
    # nothing learnt at all
    "",
    "   ",
    # an answer that is not squeue's one line
    "Welcome to the cluster!\nCOMPLETED node1",
    "Invalid job id specified",
]


@pytest.mark.parametrize("job_status", GONE)
def test_a_definite_answer_means_gone(job_status):
    assert job_gone(job_status)


@pytest.mark.parametrize("job_status", UNKNOWN)
def test_anything_else_is_not_knowing(job_status):
    assert not job_gone(job_status)


@pytest.mark.parametrize("job_status, expected", [("RUNNING node1", JobStatus.RUNNING), ("COMPLETING node1", JobStatus.RUNNING), ("PENDING ", JobStatus.PENDING), ("CONFIGURING ", JobStatus.PENDING)])
def test_running_and_pending_read_as_before(loader, fake_remote, job_status, expected):
    sp = make_spawner(loader, fake_remote)
    sp.job_status = job_status
    assert classify(sp) is expected


@pytest.mark.parametrize("job_status", UNKNOWN)
def test_the_spawner_reads_every_failure_as_unknown(loader, fake_remote, job_status):
    sp = make_spawner(loader, fake_remote)
    sp.job_status = job_status
    assert classify(sp) is JobStatus.UNKNOWN


@pytest.mark.parametrize("job_status", GONE)
def test_the_spawner_reads_a_definite_answer_as_gone(loader, fake_remote, job_status):
    sp = make_spawner(loader, fake_remote)
    sp.job_status = job_status
    assert classify(sp) is JobStatus.NOTFOUND


SHELLS = ["/bin/sh", "/bin/bash"]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    "fakes, expected",
    [
        ({"FAKE_SQUEUE": "finished"}, JobStatus.NOTFOUND),
        ({"FAKE_SQUEUE": "gone"}, JobStatus.NOTFOUND),
        ({"FAKE_SQUEUE": "completed"}, JobStatus.NOTFOUND),
        ({"FAKE_SQUEUE": "suspended"}, JobStatus.UNKNOWN),
        ({"FAKE_SQUEUE": "requeued"}, JobStatus.UNKNOWN),
        ({"FAKE_SQUEUE": "zero-bytes"}, JobStatus.UNKNOWN),
        ({"FAKE_SQUEUE": "standby"}, JobStatus.UNKNOWN),
        ({"FAKE_SQUEUE": "no-controller"}, JobStatus.UNKNOWN),
        ({"FAKE_SQUEUE": "traceback"}, JobStatus.UNKNOWN),
        ({"FAKE_SQUEUE": "silent-failure"}, JobStatus.UNKNOWN),
        ({"FAKE_SUDO": "unknown-user"}, JobStatus.UNKNOWN),
        ({"FAKE_SUDO": "password"}, JobStatus.UNKNOWN),
        ({"FAKE_SUDO": "refuse"}, JobStatus.UNKNOWN),
        ({"FAKE_SSH_FAIL": "1"}, JobStatus.UNKNOWN),
    ],
)
def test_the_query_command_through_both_shells(loader, fake_remote, shell, fakes, expected):
    sp = make_spawner(loader, fake_remote)
    status, result = query(sp, fake_remote, shell, **fakes)
    assert status is expected, (result.returncode, result.stdout, result.stderr)
    if result.returncode != 0:
        assert f"BRICS_QUERY_EXIT_STATUS={result.returncode}" in result.stderr, "a failure always says so on stderr"


def test_a_hanging_ssh_is_ended_by_the_timeout_and_reads_as_unknown(loader, fake_remote, monkeypatch):
    monkeypatch.setattr(brics_hub.slurm, "SLURM_COMMAND_TIMEOUT_S", 2)
    monkeypatch.setattr(brics_hub.slurm, "SLURM_COMMAND_KILL_AFTER_S", 1)
    sp = make_spawner(loader, fake_remote)
    started = time.monotonic()
    status, result = query(sp, fake_remote, "/bin/sh", FAKE_SSH_HANG="1")
    assert time.monotonic() - started < 20
    assert result.returncode == 124
    assert "BRICS_QUERY_EXIT_STATUS=124" in result.stderr
    assert status is JobStatus.UNKNOWN


def test_every_command_bounds_ssh(loader, fake_remote):
    sp = make_spawner(loader, fake_remote)
    for command in (sp.batch_submit_cmd, sp.batch_query_cmd, sp.batch_cancel_cmd):
        for option in ("timeout -k 5 90 ssh ", "-o ConnectTimeout=10 ", "-o ServerAliveInterval=10 ", "-o ServerAliveCountMax=3 "):
            assert option in command


class HubProcess:
    """The hub process's environment, where batchspawner runs the query and cancel commands."""

    def __init__(self, fake_remote, **fakes):
        self.env = {"PATH": f"{fake_remote / 'bin'}:/usr/bin:/bin", "FAKE_DIR": str(fake_remote), **fakes}


def on_fake_host(sp, fake_remote, **fakes):
    hub = HubProcess(fake_remote, **fakes)
    run = sp.run_command

    async def run_command(cmd, input=None, env=None):
        return await run(cmd, input=input, env=hub.env if env is None else env)

    sp.run_command = run_command
    return hub


@pytest.mark.parametrize("fakes", [{"FAKE_SUDO": "unknown-user"}, {"FAKE_SQUEUE": "traceback"}, {"FAKE_SQUEUE": "no-controller"}, {"FAKE_SQUEUE": "suspended"}])
def test_poll_keeps_the_server_and_says_why_then_stop_cancels_the_job(loader, fake_remote, caplog, fakes):
    sp = make_spawner(loader, fake_remote)
    sp.job_id = "4242"
    hub = on_fake_host(sp, fake_remote, **fakes)
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(sp.poll()) is None, "the server is kept"
    assert sp.job_id == "4242", "and its job"
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "state unknown" in r.getMessage())
    assert warning.startswith("Slurm job 4242 of alice.proj1: state unknown, keeping the server and asking again: ")
    # The fault is repaired; the user stops the server.
    hub.env = {k: v for k, v in hub.env.items() if not k.startswith("FAKE_") or k == "FAKE_DIR"} | {"FAKE_SQUEUE": "finished"}
    asyncio.run(sp.stop())
    assert (fake_remote / "scancel_job").read_text().strip() == "4242"


def test_poll_drops_the_server_when_the_job_is_gone(loader, fake_remote):
    sp = make_spawner(loader, fake_remote)
    sp.job_id = "4242"
    on_fake_host(sp, fake_remote, FAKE_SQUEUE="gone")
    assert asyncio.run(sp.poll()) == 1
    assert sp.job_id == ""


@pytest.mark.parametrize("job_id", ["", "12; rm -rf ~", "١٢"])
def test_a_stop_never_runs_scancel_without_a_job_id(loader, fake_remote, job_id):
    sp = make_spawner(loader, fake_remote)
    sp.job_id = job_id
    on_fake_host(sp, fake_remote)
    asyncio.run(sp.stop())
    assert not (fake_remote / "ssh_args").exists(), "no command ran"


def test_a_failed_cancel_is_logged_with_what_to_do(loader, fake_remote, caplog):
    sp = make_spawner(loader, fake_remote)
    sp.job_id = "4242"
    on_fake_host(sp, fake_remote, FAKE_SSH_FAIL="1")
    with pytest.raises(RuntimeError):
        asyncio.run(sp.stop(now=True))
    assert "Cancelling Slurm job 4242 of alice.proj1 failed; it runs on until its time limit unless it is cancelled on the Slurm host (scancel 4242)" in caplog.text


def test_the_cancel_command_through_both_shells(loader, fake_remote):
    sp = make_spawner(loader, fake_remote)
    for shell in SHELLS:
        result = run_local(shell, render(sp, sp.batch_cancel_cmd, job_id="77"), {"FAKE_SSH_FAIL": "1"}, fake_remote)
        assert result.returncode == 255 and "BRICS_CANCEL_EXIT_STATUS=255" in result.stderr


def test_prod_uses_the_same_rule(loader, fake_remote):
    sp = make_spawner(loader, fake_remote, name="prod")
    assert env_for("prod")["DEPLOY_CONFIG_SSH_HOSTNAME"] in sp.batch_query_cmd
    sp.job_status = "sudo: unknown user alice.proj1"
    assert classify(sp) is JobStatus.UNKNOWN
