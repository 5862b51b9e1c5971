"""
Spawn failures the hub can explain: the spawner submits through the real submit command, run by
batchspawner's way of running it (conftest.SlurmSpawner), against the fake Slurm host failing in
each way a site has met. The user gets one sentence saying what failed and whom to tell, on both
pages JupyterHub shows a failed spawn on; the hub's log gets the detail.
"""

import asyncio
import logging
import os
import re

import pytest
from conftest import BricsSlurmSpawner, HTTPError, env_for

from brics_hub.failures import SpawnFailed

PROJECT = "proj1.brics"
ACCOUNT = "alice.proj1"
HOME = "/home/proj1/alice.proj1"


def spawner(loader, fake_remote, plain=False, **fakes):
    """The hub's spawner class (or, `plain`, the installed BricsSlurmSpawner) on the fake Slurm host."""
    env = env_for("dev_dummyauth") | {
        "DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN": str(fake_remote / "wrappers"),
        "DEPLOY_CONFIG_STARTUP_POLL_INTERVAL": "1",
    }
    config = loader(env)

    # What the hub's shell needs to find the fakes and tell them how to fail.
    hub_env = {"PATH": f"{fake_remote / 'bin'}:/usr/bin:/bin", "FAKE_DIR": str(fake_remote), **fakes}

    class OnTheFakeHost(BricsSlurmSpawner if plain else config.JupyterHub.spawner_class):
        def get_env(self):
            return {**super().get_env(), **hub_env}

        async def run_command(self, cmd, input=None, env=None):
            # batchspawner runs the query and cancel commands in the hub process's environment.
            return await super().run_command(cmd, input=input, env={**os.environ, **hub_env} if env is None else env)

    sp = OnTheFakeHost(config=config)
    asyncio.run(sp.run_auth_state_hook({PROJECT: {"name": "Project 1", "username": ACCOUNT}}))
    sp.user_options = {"brics_project": PROJECT}
    return sp


def start(sp):
    # JupyterHub's start_timeout, short: a start that never ends fails the test instead of hanging it.
    return asyncio.run(asyncio.wait_for(sp.start(), 30))


def failed_start(sp):
    with pytest.raises(SpawnFailed) as err:
        start(sp)
    return err.value


# JupyterHub 5.2's canned texts for a failed spawn's `reason` (handlers/base.py `reasons`).
REASONS = {"error": "Failed to start your server on the last attempt.    Please contact admin if the issue persists."}


def error_page_message(exc):
    """What the error page says when the spawn fails within a second of POST /hub/spawn: User.spawn
    sets `reason` on the exception; SpawnHandler raises an HTTPError as it is and replaces anything
    else with HTTPError(500, "Unhandled error starting server ..."); write_error shows the HTTPError's
    log_message % args, or the canned text for its reason (JupyterHub 5.2: user.py, handlers/pages.py,
    handlers/base.py)."""
    exc.reason = "error"
    if not isinstance(exc, HTTPError):
        exc = HTTPError(500, "Unhandled error starting server alice")
    message = exc.log_message % exc.args
    reason = getattr(exc, "reason", "")
    return REASONS.get(reason, reason) if reason else message


def form_page_message(exc):
    """What the spawn form, shown again, says when the spawn POSTed from it fails within a second:
    SpawnHandler passes an HTTPError on, replaces anything else (see error_page_message) and renders
    the form with "Error: " + str() of the exception (JupyterHub 5.2: handlers/pages.py)."""
    if not isinstance(exc, HTTPError):
        exc = HTTPError(500, "Unhandled error starting server alice")
    return f"Error: {exc}"


def progress_message(exc):
    """The progress page's event and the spawn-pending page (apihandlers/users.py, handlers/pages.py)."""
    return f"Spawn failed: {getattr(exc, 'jupyterhub_message', str(exc))}"


def assert_told(exc, *fragments):
    sentence = exc.jupyterhub_message
    assert re.fullmatch(r"[A-Z][^\n]*\.", sentence) and ". " not in sentence, f"one sentence: {sentence!r}"
    assert "tell the service's administrators" in sentence
    for fragment in fragments:
        assert fragment in sentence
    assert form_page_message(exc) == f"Error: {sentence}"
    assert error_page_message(exc) == sentence
    assert progress_message(exc) == f"Spawn failed: {sentence}"
    return sentence


def test_a_spawn_that_works_is_unchanged(loader, fake_remote):
    sp = spawner(loader, fake_remote)
    assert start(sp) == ("node1", 12345)
    assert sp.job_id == "4242"
    assert (fake_remote / "sudo_user").read_text().strip() == ACCOUNT


def test_ssh_unreachable(loader, fake_remote, caplog):
    exc = failed_start(spawner(loader, fake_remote, FAKE_SSH_FAIL="1"))
    assert_told(exc, "could not connect to the Slurm host over SSH")
    assert exc.status_code == 503
    assert "Connection refused" in caplog.text and "BRICS_SUBMIT_EXIT_STATUS=255" in caplog.text


def test_submit_that_hangs_is_ended_by_the_timeout(loader, fake_remote, caplog, monkeypatch):
    import brics_hub.slurm

    monkeypatch.setattr(brics_hub.slurm, "SLURM_COMMAND_TIMEOUT_S", 2)
    monkeypatch.setattr(brics_hub.slurm, "SLURM_COMMAND_KILL_AFTER_S", 1)
    exc = failed_start(spawner(loader, fake_remote, FAKE_SSH_HANG="1"))
    assert_told(exc, "The Slurm host did not answer within 2 s")
    assert "The job may have been submitted all the same: on the Slurm host, squeue -u alice.proj1 -n spawner-jupyterhub" in caplog.text


def test_slurm_host_without_accept_env_for_the_token(loader, fake_remote, caplog):
    exc = failed_start(spawner(loader, fake_remote, FAKE_ACCEPTENV=""))
    assert_told(exc, "The Slurm host's SSH server did not accept the hub's API token (it needs AcceptEnv JUPYTERHUB_API_TOKEN JPY_API_TOKEN for jupyterspawner)")
    assert not (fake_remote / "sudo_user").exists(), "nothing ran as the user"


@pytest.mark.parametrize("mode", ["refuse", "password"])
def test_sudo_refused(loader, fake_remote, caplog, mode):
    exc = failed_start(spawner(loader, fake_remote, FAKE_SUDO=mode))
    assert_told(exc, f"refused to let the hub submit jobs as {ACCOUNT} (sudo)")
    assert ("is not allowed to execute" if mode == "refuse" else "a password is required") in caplog.text


def test_project_account_missing_on_the_slurm_host(loader, fake_remote, caplog):
    exc = failed_start(spawner(loader, fake_remote, FAKE_SUDO="unknown-user"))
    assert_told(exc, f"Your project account {ACCOUNT} does not exist on the Slurm host")
    assert f"sudo: unknown user {ACCOUNT}" in caplog.text


def test_wrapper_missing(loader, fake_remote, caplog):
    (fake_remote / "wrappers" / "slurmspawner_sbatch").unlink()
    exc = failed_start(spawner(loader, fake_remote))
    assert_told(exc, "The job submission command slurmspawner_sbatch is missing on the Slurm host")
    assert f"{fake_remote}/wrappers/slurmspawner_sbatch: command not found" in caplog.text


def test_wrapper_crashing(loader, fake_remote, caplog):
    exc = failed_start(spawner(loader, fake_remote, FAKE_SBATCH="crash"))
    assert_told(exc, "The job submission command slurmspawner_sbatch failed on the Slurm host")
    assert "Traceback (most recent call last)" in caplog.text and "ModuleNotFoundError" in caplog.text


def test_sbatch_rejects_the_job(loader, fake_remote, caplog):
    exc = failed_start(spawner(loader, fake_remote, FAKE_SBATCH="reject"))
    assert_told(exc, "Slurm refused the job (Invalid partition name specified)", "check the options you chose")
    assert exc.status_code == 400


def test_no_job_id(loader, fake_remote, caplog):
    exc = failed_start(spawner(loader, fake_remote, FAKE_SBATCH="no-id"))
    assert_told(exc, "Slurm did not return a job id")


def test_job_ends_before_its_server_starts(loader, fake_remote, caplog):
    sp = spawner(loader, fake_remote, FAKE_SQUEUE="gone")
    exc = failed_start(sp)
    assert_told(exc, f"Your Slurm job 4242 ended before its Jupyter server started (its log is {HOME}/jupyterhub_slurmspawner_4242.log)")
    assert "has disappeared" in caplog.text


def test_without_the_hub_module_the_user_would_read_unhandled_error(loader, fake_remote):
    # The failure as batchspawner raises it, before the hub module turns it into a sentence.
    sp = spawner(loader, fake_remote, plain=True, FAKE_SSH_FAIL="1")
    with pytest.raises(RuntimeError) as err:
        start(sp)
    assert not isinstance(err.value, HTTPError)
    assert form_page_message(err.value) == "Error: HTTP 500: Internal Server Error (Unhandled error starting server alice)"
    assert error_page_message(err.value) == "Unhandled error starting server alice"
    assert progress_message(err.value).startswith("Spawn failed: ssh: connect to host")


def test_failures_are_logged_as_errors(loader, fake_remote, caplog):
    with caplog.at_level(logging.ERROR):
        failed_start(spawner(loader, fake_remote, FAKE_SBATCH="reject"))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(f"Submitting the Slurm job as {ACCOUNT} failed" in m and "sbatch: error: Batch job submission failed" in m for m in errors)
