"""
The spawner's command templates, rendered as batchspawner renders them and run through real shells:
the hub's local shell (sh -c, as batchspawner's run_command does, and bash -c) runs the fake Slurm
host of fake_remote.py.
"""

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import JobStatus, classify, env_for, format_template

NASTY_VALUES = {
    "JUPYTERHUB_API_TOKEN": "abc123",
    "JUPYTERHUB_OAUTH_SCOPES": '["access:servers!server=alice/", "access:servers!user=alice"]',
    "JUPYTERHUB_BRICS_SPACES": "two  spaces and a\ttab",
    "JUPYTERHUB_BRICS_QUOTES": "it's \"quoted\" and 'single'",
    "JUPYTERHUB_BRICS_DOLLARS": "$HOME ${PATH} $(id) `id` $$ \\$x",
    "JUPYTERHUB_BRICS_SHELL": "a;b && c || d | e > f < g & * ? [x] ~ # !",
    "JUPYTERHUB_BRICS_NEWLINE": "first line\nsecond line",
    "JUPYTERHUB_BRICS_EMPTY": "",
    "JUPYTERHUB_BRICS_BACKSLASH": "back\\slash\\\\ and \\'",
    "JPY_API_TOKEN": "abc123",
    "USER": "alice.proj1",
    "HOME": "/home/proj1/alice.proj1",
    "SHELL": "/bin/bash",
}


TOKEN = NASTY_VALUES["JUPYTERHUB_API_TOKEN"]


def spawner_config(loader, fake_remote, name="prod"):
    env = env_for(name) | {"DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN": str(fake_remote / "wrappers")}
    return loader(env)


def make_spawner(loader, fake_remote, env=NASTY_VALUES, account="alice.proj1", name="prod"):
    """The hub's spawner class, configured for `name`, as JupyterHub makes it for a spawn: auth_state
    hook run, a project chosen; get_env() returns `env`."""
    config = spawner_config(loader, fake_remote, name)

    class WithEnv(config.JupyterHub.spawner_class):
        def get_env(self):
            return dict(env)

    sp = WithEnv(config=config)
    asyncio.run(sp.run_auth_state_hook({"proj1.brics": {"name": "Project 1", "username": account}}))
    sp.user_options = {"brics_project": "proj1.brics"}
    return sp


def render(sp, command, job_id=None):
    """BatchSpawnerBase (1.3): exec_prefix and the command are formatted separately with
    get_req_subvars() (plus the spawner's job_id for query and cancel), joined by a space."""
    if job_id is not None:
        sp.job_id = job_id
    subvars = sp.get_req_subvars() | ({"job_id": sp.job_id} if job_id is not None else {})
    return " ".join((format_template(sp.exec_prefix, **subvars), format_template(command, **subvars)))


def run_local(shell, command, env, fake_remote, stdin=""):
    full_env = dict(env)
    # batchspawner passes get_env() (no PATH: the shells fall back to a default PATH); the fakes must be found first.
    full_env["PATH"] = f"{fake_remote / 'bin'}:/usr/bin:/bin"
    full_env["FAKE_DIR"] = str(fake_remote)
    return subprocess.run([shell, "-c", command], input=stdin, env=full_env, capture_output=True, text=True, timeout=30)


SHELLS = ["/bin/sh", "/bin/bash"]


def submit(sp, fake_remote, shell, env=NASTY_VALUES, **fakes):
    command = render(sp, sp.batch_submit_cmd)
    return command, run_local(shell, command, {**env, **fakes}, fake_remote, stdin="#!/bin/bash\necho job\n")


@pytest.mark.parametrize("shell", SHELLS)
def test_submit_passes_every_keepvar_intact_across_both_shells(loader, fake_remote, shell):
    sp = make_spawner(loader, fake_remote)
    _, result = submit(sp, fake_remote, shell)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4242"
    recorded = json.loads((fake_remote / "sbatch.json").read_text())
    assert recorded["env"] == NASTY_VALUES
    assert recorded["argv"] == []
    assert recorded["script"] == "#!/bin/bash\necho job\n"
    assert (fake_remote / "sudo_user").read_text().strip() == "alice.proj1"
    ssh_args = (fake_remote / "ssh_args").read_text().splitlines()
    assert ssh_args[:4] == ["-i", "/srv/jupyterhub/ssh_key", "-o", "BatchMode=yes"]
    assert ["-o", "StrictHostKeyChecking=yes"] == ssh_args[4:6]
    assert f"jupyterspawner@{env_for('prod')['DEPLOY_CONFIG_SSH_HOSTNAME']}" in ssh_args


@pytest.mark.parametrize("shell", SHELLS)
def test_the_api_token_never_goes_on_a_command_line(loader, fake_remote, shell):
    sp = make_spawner(loader, fake_remote)
    command, result = submit(sp, fake_remote, shell)
    assert result.returncode == 0, result.stderr
    # batchspawner runs and logs this command line; ssh's and sudo's arguments are what `ps` shows.
    assert TOKEN not in command
    assert TOKEN not in (fake_remote / "ssh_args").read_text()
    assert TOKEN not in (fake_remote / "sudo_args").read_text()
    ssh_args = (fake_remote / "ssh_args").read_text().splitlines()
    assert [a for a in ssh_args if a.startswith("SendEnv=")] == ["SendEnv=JUPYTERHUB_API_TOKEN", "SendEnv=JPY_API_TOKEN"]
    # ...and still reaches the job.
    env = json.loads((fake_remote / "sbatch.json").read_text())["env"]
    assert env["JUPYTERHUB_API_TOKEN"] == env["JPY_API_TOKEN"] == TOKEN


@pytest.mark.parametrize("shell", SHELLS)
def test_a_slurm_host_that_does_not_accept_the_token_refuses_the_submission(loader, fake_remote, shell):
    # sshd without AcceptEnv drops the variables silently: the job would start without a token.
    sp = make_spawner(loader, fake_remote)
    _, result = submit(sp, fake_remote, shell, FAKE_ACCEPTENV="")
    assert result.returncode == 97
    assert "BRICS_TOKEN_NOT_RECEIVED" in result.stderr
    assert not (fake_remote / "sudo_args").exists(), "nothing ran as the user"


def test_other_secret_looking_variables_are_not_passed(loader, fake_remote, caplog):
    env = {**NASTY_VALUES, "JUPYTERHUB_OAUTH_CLIENT_SECRET": "s3cr3t", "MY_PASSWORD": "pw", "NOT-A-NAME": "x"}
    sp = make_spawner(loader, fake_remote, env=env)
    command, result = submit(sp, fake_remote, "/bin/sh", env=env)
    assert result.returncode == 0, result.stderr
    for value in ("s3cr3t", "pw"):
        assert value not in command and value not in (fake_remote / "sudo_args").read_text()
    assert "Not passing JUPYTERHUB_OAUTH_CLIENT_SECRET, MY_PASSWORD, NOT-A-NAME to the Slurm job" in caplog.text


@pytest.mark.parametrize("shell", SHELLS)
def test_submit_with_an_empty_keepvar_entry(loader, fake_remote, shell):
    env = {"USER": "alice.proj1", "HOME": "/h", "JUPYTERHUB_API_TOKEN": TOKEN}
    sp = make_spawner(loader, fake_remote, env=env)
    sp.req_keepvars = "USER,,HOME,JUPYTERHUB_API_TOKEN,"
    _, result = submit(sp, fake_remote, shell, env=env)
    assert result.returncode == 0, result.stderr
    # SHELL: jupyterspawner's, which sudo's env_keep keeps when the spawner does not set it.
    assert json.loads((fake_remote / "sbatch.json").read_text())["env"] == env | {"SHELL": "/bin/bash"}


def query(sp, fake_remote, shell, job_id="4242", **env):
    command = render(sp, sp.batch_query_cmd, job_id=job_id)
    result = run_local(shell, command, env, fake_remote)
    # BatchSpawnerBase.query_job_status: stdout on success, else RuntimeError(stderr) -> job_status
    sp.job_status = result.stdout.strip() if result.returncode == 0 else result.stderr.strip()
    return classify(sp), result


@pytest.mark.parametrize("shell", SHELLS)
def test_query_reads_job_states(loader, fake_remote, shell):
    sp = make_spawner(loader, fake_remote)
    status, _ = query(sp, fake_remote, shell, FAKE_SQUEUE="running")
    assert status is JobStatus.RUNNING
    assert (fake_remote / "squeue_job").read_text().strip() == "4242"
    assert query(sp, fake_remote, shell, FAKE_SQUEUE="pending")[0] is JobStatus.PENDING


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("mode", ["gone", "finished"])
def test_query_reads_a_vanished_job_as_gone(loader, fake_remote, shell, mode):
    sp = make_spawner(loader, fake_remote)
    status, _ = query(sp, fake_remote, shell, FAKE_SQUEUE=mode)
    assert status is JobStatus.NOTFOUND


@pytest.mark.parametrize("shell", SHELLS)
def test_ssh_failure_while_polling_reads_as_unknown(loader, fake_remote, shell):
    sp = make_spawner(loader, fake_remote)
    status, result = query(sp, fake_remote, shell, FAKE_SSH_FAIL="1")
    assert result.returncode == 255
    assert "Connection refused" in result.stderr
    assert status is JobStatus.UNKNOWN


def test_slurm_controller_timeouts_still_read_as_unknown(loader, fake_remote):
    sp = make_spawner(loader, fake_remote)
    sp.job_status = "slurm_load_jobs error: Unable to contact slurm controller"
    assert classify(sp) is JobStatus.UNKNOWN


@pytest.mark.parametrize("shell", SHELLS)
def test_cancel_passes_the_job_id(loader, fake_remote, shell):
    sp = make_spawner(loader, fake_remote)
    command = render(sp, sp.batch_cancel_cmd, job_id="4242")
    result = run_local(shell, command, {}, fake_remote)
    assert result.returncode == 0, result.stderr
    assert (fake_remote / "scancel_job").read_text().strip() == "4242"


@pytest.mark.parametrize("name", ["dev_dummyauth", "prod"])
def test_batch_script_renders(loader, fake_remote, name):
    sp = spawner_config(loader, fake_remote, name).BricsSlurmSpawner
    script = format_template(
        sp.batch_script,
        homedir="/home/proj1/alice.proj1",
        keepvars="JUPYTERHUB_API_TOKEN,USER",
        partition="",
        runtime="01:00:00",
        memory="",
        gres="",
        ngpus="1",
        nprocs="",
        reservation="",
        options="--nodes=1",
        prologue="",
        epilogue="",
        srun="srun --export=ALL",
        cmd="batchspawner-singleuser jupyterhub-singleuser",
    )
    assert script.startswith("#!/bin/bash\n#SBATCH --output=/home/proj1/alice.proj1/jupyterhub_slurmspawner_%j.log\n")
    assert "#SBATCH --export=JUPYTERHUB_API_TOKEN,USER\n" in script
    assert "#SBATCH --time=01:00:00\n" in script
    assert "#SBATCH --nodes=1\n" in script
    assert "--partition" not in script
    assert ("#SBATCH --gpus=1\n" in script) == (name == "prod")
    assert 'source "${JUPYTERHUB_BRICS_CONDA_PREFIX_DIR}/bin/activate" jupyter-user-env\n' in script
    assert "\nsrun --export=ALL batchspawner-singleuser jupyterhub-singleuser\n" in script
    # the rendered script is valid bash
    check = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_shell_scripts_pass_shellcheck():
    root = Path(__file__).resolve().parents[2]
    scripts = sorted(str(p) for d in ("brics_jupyterhub/scripts", "brics_slurm/scripts") for p in (root / d).rglob("*.sh"))
    assert scripts
    if not any(os.access(os.path.join(p, "shellcheck"), os.X_OK) for p in os.environ.get("PATH", "").split(":")):
        pytest.skip("shellcheck not installed")
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
