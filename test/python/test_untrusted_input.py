"""
What a user or an identity provider controls never reaches a shell unchecked: the account name
from the token's projects claim, the spawn form's values (also through the REST API), the job id
read back from sbatch. Each is validated before anything is rendered, and what reaches a command
is quoted for both shells anyway.
"""

import asyncio
import subprocess
from pathlib import Path

import pytest
from conftest import BricsSlurmSpawner, env_for
from test_spawner_commands import NASTY_VALUES, make_spawner, render, run_local

from brics_hub.failures import SpawnFailed
from brics_hub.slurm import quoted_for_both_shells

REPO = Path(__file__).resolve().parents[2]
HOSTILE_ACCOUNTS = [
    "alice.proj1 true; touch /tmp/x; echo",
    "alice.proj1$(touch /tmp/x)",
    "alice.proj1`touch /tmp/x`",
    "alice.proj1'; touch /tmp/x; '",
    "alice.proj1\ntouch /tmp/x",
    "-u root.x",
    "Alice.proj1",
    "alice",
    "a" * 30 + ".proj1",
    "",
]
FORM = {"brics_project": ["proj1.brics"], "runtime": ["01:00:00"], "ngpus": ["1"], "partition": [""], "reservation": [""]}


@pytest.mark.parametrize("account", HOSTILE_ACCOUNTS)
def test_an_account_name_that_is_not_user_dot_project_is_never_rendered(loader, fake_remote, account):
    sp = make_spawner(loader, fake_remote, account=account)
    for command in (sp.batch_submit_cmd, sp.batch_query_cmd, sp.batch_cancel_cmd):
        with pytest.raises(SpawnFailed) as err:
            render(sp, command, job_id="4242")
        assert "is not an account name <USER>.<PROJECT>" in str(err.value)
        assert "please tell the service's administrators" in str(err.value)


@pytest.mark.parametrize("account", HOSTILE_ACCOUNTS[:5])
def test_a_hostile_account_is_refused_on_the_form_and_nothing_runs(loader, fake_remote, account, tmp_path):
    sp = make_spawner(loader, fake_remote, account=account)
    with pytest.raises(SpawnFailed) as err:
        sp.run_options_from_form(FORM)
    message = str(err.value)
    assert message.startswith(f"The identity provider named the account {account!r}"[:60])
    assert "so your server was not started" in message
    with pytest.raises(SpawnFailed):
        asyncio.run(sp.submit_batch_script())
    assert not (fake_remote / "ssh_args").exists(), "no command ran"


def test_the_longest_allowed_account_still_works(loader, fake_remote):
    account = "a" * 25 + ".proj1"  # 32 characters
    sp = make_spawner(loader, fake_remote, account=account)
    assert sp.run_options_from_form(FORM)["brics_project"] == "proj1.brics"


WORDS = [
    "alice.proj1",
    "two words",
    "it's",
    'say "hi"',
    "$(id) `id` ${HOME} $$",
    "a;b&&c||d|e>f<g&*?[x]~#!",
    "back\\slash\\\\",
    "new\nline",
    "",
    "-n",
]


@pytest.mark.parametrize("word", WORDS)
def test_quoting_for_both_shells_delivers_the_word_itself(word, tmp_path):
    # The hub's sh -c makes ssh's argument of it; the Slurm host's shell runs that argument.
    as_ssh_gets_it = subprocess.run(["sh", "-c", f"printf '%s' {quoted_for_both_shells(word)}"], capture_output=True, text=True, check=True).stdout
    as_remote_gets_it = subprocess.run(["bash", "-c", f"printf '%s' {as_ssh_gets_it}"], capture_output=True, text=True, check=True).stdout
    assert as_remote_gets_it == word


@pytest.mark.parametrize(
    "field, value, told",
    [
        ("runtime", "23:59:59", "The job duration '23:59:59' is not one the spawn form offers (1h, 2h, 4h, 8h)"),
        ("runtime", "00:00:01", "The job duration '00:00:01' is not one the spawn form offers (1h, 2h, 4h, 8h)"),
        ("ngpus", "9", "The number of GPUs '9' is not one the spawn form offers (1, 2, 3, 4)"),
        ("ngpus", "0", "The number of GPUs '0' is not one the spawn form offers (1, 2, 3, 4)"),
        ("brics_project", "proj2.brics", "The project 'proj2.brics' is not one the spawn form offers (proj1.brics: Project 1)"),
        ("partition", "gpu\n#SBATCH --x", "The partition 'gpu\\n#SBATCH --x' is not a plain word"),
    ],
)
def test_a_value_the_form_does_not_offer_is_refused_readably(loader, fake_remote, field, value, told):
    sp = make_spawner(loader, fake_remote)
    with pytest.raises(SpawnFailed) as err:
        sp.run_options_from_form(FORM | {field: [value]})
    assert str(err.value).startswith(told)
    assert str(err.value).endswith("so your server was not started; choose again from the form.")
    assert err.value.status_code == 400


@pytest.mark.parametrize("field, value", [("runtime", "23:59:59"), ("ngpus", "9")])
def test_bricsauthenticator_itself_accepts_what_its_form_does_not_offer(loader, fake_remote, field, value):
    # Why the hub checks: the installed spawner validates by shape only.
    sp = BricsSlurmSpawner(config=loader(env_for("prod")))
    asyncio.run(sp.run_auth_state_hook({"proj1.brics": {"name": "Project 1", "username": "alice.proj1"}}))
    assert sp.run_options_from_form(FORM | {field: [value]})[field] == value


def test_the_offered_values_pass(loader, fake_remote):
    sp = make_spawner(loader, fake_remote)
    for runtime in ("01:00:00", "02:00:00", "04:00:00", "08:00:00"):
        for ngpus in "1234":
            options = sp.run_options_from_form(FORM | {"runtime": [runtime], "ngpus": [ngpus], "partition": ["gpu-1"]})
            assert (options["runtime"], options["ngpus"], options["partition"]) == (runtime, ngpus, "gpu-1")


@pytest.mark.parametrize("options", [{"runtime": "23:59:59"}, {"ngpus": "9"}, {"reservation": "r; id"}])
def test_options_from_the_rest_api_are_checked_before_submitting(loader, fake_remote, options):
    # POST /hub/api/users/<name>/server hands user_options over without the form.
    sp = make_spawner(loader, fake_remote)
    sp.user_options = {"brics_project": "proj1.brics", "runtime": "01:00:00", "ngpus": "1"} | options
    with pytest.raises(SpawnFailed):
        asyncio.run(sp.submit_batch_script())
    assert not (fake_remote / "ssh_args").exists(), "no command ran"


@pytest.mark.parametrize("output", ["١٢٣", "12 34", "+12", "1_000", "12;rm", "4242\n"])
def test_a_job_id_that_is_not_digits_is_not_kept(loader, fake_remote, output):
    sp = make_spawner(loader, fake_remote)
    sp.parse_job_id = lambda out: output  # what sbatch's output parsed to
    env = {**NASTY_VALUES, "PATH": f"{fake_remote / 'bin'}:/usr/bin:/bin", "FAKE_DIR": str(fake_remote)}
    sp.get_env = lambda: env
    with pytest.raises(SpawnFailed) as err:
        asyncio.run(sp.submit_batch_script())
    assert "Slurm did not return a job id" in str(err.value)
    assert sp.job_id == ""


@pytest.mark.parametrize("job_id", ["1; touch /tmp/x", "$(id)", "١٢", " 12"])
def test_a_stored_job_id_that_is_not_digits_never_reaches_a_command(loader, fake_remote, job_id):
    sp = make_spawner(loader, fake_remote)
    for command in (sp.batch_query_cmd, sp.batch_cancel_cmd):
        with pytest.raises(RuntimeError):
            render(sp, command, job_id=job_id)


def test_the_sudo_policy_allows_the_wrappers_without_arguments():
    text = (REPO / "brics_slurm/jupyterspawner_sudoers").read_text()
    alias = next(line for line in text.splitlines() if line.startswith("Cmnd_Alias SLURMSPAWNER_WRAPPERS"))
    commands = [c.strip() for c in alias.split("=", 1)[1].split(",")]
    assert commands == [f'@SLURMSPAWNER_WRAPPERS_BIN@/slurmspawner_{s} ""' for s in ("sbatch", "squeue", "scancel")]


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_the_commands_give_the_wrappers_no_arguments(loader, fake_remote, shell):
    # The fake sudo refuses arguments to a wrapper, as the policy's "" does.
    sp = make_spawner(loader, fake_remote)
    for command in (sp.batch_query_cmd, sp.batch_cancel_cmd):
        result = run_local(shell, render(sp, command, job_id="4242"), {}, fake_remote)
        assert result.returncode == 0, result.stderr
