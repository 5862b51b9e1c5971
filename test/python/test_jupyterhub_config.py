"""jupyterhub_config.py and the brics_hub module: every environment loads from what the manifest
gives the hub, values are converted (not re-validated), problems name their key, dummy login,
reconnecting after a hub restart."""

import asyncio
import inspect
import json

import pytest
from conftest import CONFIG_DIR, CONFIG_FILE, CONFIGURED_CLASSES, ENVIRONMENTS, env_for

from brics_hub import HubConfigError, load_settings


def settings_data(name):
    return json.loads(env_for(name)["BRICS_ENV_SETTINGS"])


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_config_loads_for_every_environment(loader, name):
    env = env_for(name)
    config = loader(env)
    auth, slurm = ENVIRONMENTS[name]
    hub = config.JupyterHub
    settings = settings_data(name)
    proxy_host = "127.0.0.1" if settings["ingress"] == "zenith" else ""
    assert hub.bind_url == f"http://{proxy_host}:8000{env['DEPLOY_CONFIG_BASE_URL']}"
    assert hub.hub_bind_url == ("http://127.0.0.1:8081" if slurm == "pod" else "http://0.0.0.0:8081")
    assert hub.cookie_max_age_days == 0.5
    assert hub.cleanup_servers is False
    assert issubclass(hub.spawner_class, CONFIGURED_CLASSES["BricsSlurmSpawner"])
    assert config.Authenticator.enable_auth_state is True
    assert config.Application.log_level == env.get("DEPLOY_CONFIG_LOG_LEVEL", "INFO")
    sp = config.BricsSlurmSpawner
    assert sp.hub_connect_url == env["DEPLOY_CONFIG_HUB_CONNECT_URL"]
    assert sp.env_keep == []
    assert sp.environment == {
        "JUPYTERHUB_BRICS_CONDA_PREFIX_DIR": env["DEPLOY_CONFIG_CONDA_PREFIX_DIR"],
        "JUPYTERHUB_BRICS_JUPYTER_DATA_DIR": env["DEPLOY_CONFIG_JUPYTER_DATA_DIR"],
    }
    assert sp.start_timeout == 420
    assert sp.req_srun == "srun --export=ALL"
    assert sp.req_options == "--nodes=1"
    assert sp.notebook_dir == "~/"
    assert sp.exec_prefix == ""
    ssh = f"timeout -k 5 90 ssh -i /srv/jupyterhub/ssh_key -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o ServerAliveInterval=10 -o ServerAliveCountMax=3 -o SendEnv=JUPYTERHUB_API_TOKEN -o SendEnv=JPY_API_TOKEN jupyterspawner@{env['DEPLOY_CONFIG_SSH_HOSTNAME']} "
    wrappers = env["DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN"]
    assert sp.batch_submit_cmd.startswith(ssh)
    assert " sudo -u {{brics_account}} " in sp.batch_submit_cmd
    assert sp.batch_submit_cmd.split(" || ")[-2].endswith(f"{wrappers}/slurmspawner_sbatch")
    assert sp.batch_query_cmd.startswith(f"out=$({ssh}sudo -u {{{{brics_account}}}} SLURMSPAWNER_JOB_ID={{{{brics_job_id}}}} {wrappers}/slurmspawner_squeue)")
    assert sp.batch_cancel_cmd.startswith(f"{ssh}sudo -u {{{{brics_account}}}} SLURMSPAWNER_JOB_ID={{{{brics_job_id}}}} {wrappers}/slurmspawner_scancel ||")
    if auth == "dummy":
        from brics_hub.auth import DummyBricsAuthenticator

        assert hub.authenticator_class is DummyBricsAuthenticator
        assert config.DummyBricsAuthenticator.dev_users == env["DEPLOY_CONFIG_DEV_USERS"].split()
        assert config.DummyBricsAuthenticator.shared_password == env["DEPLOY_CONFIG_DUMMYAUTH_PASSWORD"]
        assert "BricsAuthenticator" not in config
    else:
        assert hub.authenticator_class is CONFIGURED_CLASSES["BricsAuthenticator"]
        ba = config.BricsAuthenticator
        assert ba.oidc_server == env["DEPLOY_CONFIG_OIDC_SERVER"]
        assert ba.brics_platform == env["DEPLOY_CONFIG_BRICS_PLATFORM"]
        assert ba.jwt_audience == env["DEPLOY_CONFIG_JWT_AUDIENCE"]
        assert ba.jwt_leeway == 5
        assert ba.invalid_jwt_logout is True
        prefix = env["DEPLOY_CONFIG_BASE_URL"].rstrip("/")
        assert ba.logout_redirect_url == f"{prefix}/_oidc/sign_out?rd={prefix.replace('/', '%2F')}%2F"
    script = sp.batch_script
    assert "#SBATCH --get-user-env\n" in script
    assert ("--gpus" in script) == (slurm == "external")


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_absent_optional_keys_take_the_default_the_manifest_names(loader, name):
    env = env_for(name)
    optional = [k for k in settings_data(name)["keys"] if not k["required"]]
    assert not any(k["env"] in env for k in optional), "the example ConfigMap leaves the optional keys out"
    defaults = {k["key"]: k["default"] for k in optional}
    sp = loader(env).BricsSlurmSpawner
    assert sp.poll_interval == int(defaults["pollInterval"]) and isinstance(sp.poll_interval, int)
    assert sp.startup_poll_interval == int(defaults["startupPollInterval"])


def test_given_values_are_converted_by_type(loader):
    env = env_for("prod") | {
        "DEPLOY_CONFIG_BASE_URL": "/jupyter/",
        "DEPLOY_CONFIG_POLL_INTERVAL": "90",
        "DEPLOY_CONFIG_STARTUP_POLL_INTERVAL": "2",
    }
    config = loader(env)
    assert config.JupyterHub.bind_url == "http://127.0.0.1:8000/jupyter/"  # prod: behind Zenith
    assert config.BricsAuthenticator.logout_redirect_url == "/jupyter/_oidc/sign_out?rd=%2Fjupyter%2F"
    assert config.BricsSlurmSpawner.poll_interval == 90
    assert isinstance(config.BricsSlurmSpawner.poll_interval, int)  # an Integer trait
    assert config.BricsSlurmSpawner.startup_poll_interval == 2


def test_values_are_not_validated_again():
    # `brics-env check` owns validation (KEY_SPECS): what it would refuse still only gets converted here.
    env = env_for("dev_dummyauth") | {"DEPLOY_CONFIG_LOG_LEVEL": "info", "DEPLOY_CONFIG_DEV_USERS": "Alice.proj1  x"}
    settings = load_settings(env)
    assert settings["logLevel"] == "info"
    assert settings["devUsers"] == ["Alice.proj1", "x"]


@pytest.mark.parametrize("given, used", [("/jupyter", "/jupyter/"), ("jupyter/", "/jupyter/"), ("/jupyter/", "/jupyter/"), ("/", "/")])
def test_base_url_is_normalised_as_jupyterhub_does(loader, given, used):
    # Upstream's example ConfigMaps write "/jupyter".
    config = loader(env_for("prod") | {"DEPLOY_CONFIG_BASE_URL": given})
    assert config.JupyterHub.bind_url == f"http://127.0.0.1:8000{used}"  # prod: behind Zenith
    prefix = used.rstrip("/")
    assert config.BricsAuthenticator.logout_redirect_url == f"{prefix}/_oidc/sign_out?rd={prefix.replace('/', '%2F')}%2F"


def test_an_absent_log_level_takes_the_schema_default(loader):
    env = env_for("prod")
    env.pop("DEPLOY_CONFIG_LOG_LEVEL", None)
    default = next(k["default"] for k in settings_data("prod")["keys"] if k["key"] == "logLevel")
    assert loader(env).Application.log_level == default == "INFO"


def test_the_hub_module_has_no_key_table_of_its_own():
    # Names, env vars, defaults and rules of deploy-config keys come from BRICS_ENV_SETTINGS only.
    sources = [p for p in (CONFIG_DIR / "brics_hub").glob("*.py")] + [CONFIG_FILE]
    for path in sources:
        text = path.read_text()
        assert "DEPLOY_CONFIG_" not in text, f"{path.name} names a deploy-config env var"
        assert "environ.get(\"BRICS_ENV_" not in text


def test_the_entry_point_is_thin():
    lines = [line for line in CONFIG_FILE.read_text().splitlines() if line.strip()]
    assert len(lines) <= 30, f"jupyterhub_config.py has {len(lines)} lines; the logic belongs in brics_hub"


def problem(env):
    with pytest.raises(HubConfigError) as err:
        load_settings(env)
    return str(err.value)


def test_missing_required_values_are_all_named_with_their_key(loader):
    env = env_for("dev_dummyauth")
    del env["DEPLOY_CONFIG_SSH_HOSTNAME"]
    del env["DEPLOY_CONFIG_DUMMYAUTH_PASSWORD"]
    env["DEPLOY_CONFIG_HUB_CONNECT_URL"] = ""
    message = problem(env)
    assert "deploy-config key sshHostname (DEPLOY_CONFIG_SSH_HOSTNAME) is missing" in message
    assert "deploy-config key dummyAuthPassword (DEPLOY_CONFIG_DUMMYAUTH_PASSWORD) is missing" in message
    assert "deploy-config key hubConnectUrl (DEPLOY_CONFIG_HUB_CONNECT_URL) is missing" in message
    assert "logLevel" not in message
    assert "dev_dummyauth" in message


def test_a_jwt_environment_needs_the_jwt_keys_and_not_the_dummy_ones():
    env = env_for("prod")
    del env["DEPLOY_CONFIG_JWT_AUDIENCE"]
    message = problem(env)
    assert "deploy-config key jwtAudience (DEPLOY_CONFIG_JWT_AUDIENCE) is missing" in message
    assert "dummyAuthPassword" not in message


@pytest.mark.parametrize("value", ["soon", "1.5", "-1", "", " 60", "٦٠"])
def test_a_value_that_does_not_convert_names_its_key(value):
    env = env_for("dev_dummyauth") | {"DEPLOY_CONFIG_POLL_INTERVAL": value}
    message = problem(env)
    assert f"deploy-config key pollInterval (DEPLOY_CONFIG_POLL_INTERVAL) = {value!r} is not a whole number of seconds" in message
    assert message.count("\n  - ") == 1


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "BRICS_ENV_SETTINGS is not set"),
        ("{not json", "BRICS_ENV_SETTINGS is not what `brics-env manifest` writes"),
        ('{"environment": "prod"}', "BRICS_ENV_SETTINGS is not what `brics-env manifest` writes (KeyError: 'auth')"),
    ],
)
def test_settings_data_the_manifest_did_not_write_is_refused(value, expected):
    env = env_for("prod")
    if value is None:
        del env["BRICS_ENV_SETTINGS"]
    else:
        env["BRICS_ENV_SETTINGS"] = value
    assert expected in problem(env)


def test_reading_a_key_the_environment_does_not_pass_says_where_to_declare_it():
    settings = load_settings(env_for("dev_dummyauth"))
    with pytest.raises(HubConfigError) as err:
        settings["oidcServer"]
    assert "deploy-config key 'oidcServer'" in str(err.value)
    assert "KEY_SPECS (src/plan/deployConfig.ts)" in str(err.value)


def test_the_hub_exits_with_one_message_not_a_traceback(loader):
    env = env_for("prod") | {"DEPLOY_CONFIG_STARTUP_POLL_INTERVAL": "fast"}
    with pytest.raises(SystemExit) as exit_:
        loader(env)
    message = str(exit_.value.code)
    assert message.startswith("jupyterhub_config.py: the deploy ConfigMap of prod is not usable")
    assert "startupPollInterval (DEPLOY_CONFIG_STARTUP_POLL_INTERVAL) = 'fast'" in message


def make_dummy_authenticator(loader):
    config = loader(env_for("dev_dummyauth"))
    return config.JupyterHub.authenticator_class(config=config)


def login(authenticator, username, password):
    return asyncio.run(authenticator.authenticate(None, {"username": username, "password": password}))


PASSWORD = env_for("dev_dummyauth")["DEPLOY_CONFIG_DUMMYAUTH_PASSWORD"]


def test_dummy_authenticator_accepts_only_the_shared_password(loader):
    authenticator = make_dummy_authenticator(loader)
    assert authenticator.allow_all is True
    assert login(authenticator, "alice", "wrong") is None
    assert login(authenticator, "alice", "") is None
    assert login(authenticator, "alice", PASSWORD + " ") is None
    assert login(authenticator, "alice", PASSWORD) is not None


def test_dummy_authenticator_ignores_the_form_username_and_returns_brics_auth_state(loader):
    authenticator = make_dummy_authenticator(loader)
    result = login(authenticator, "mallory", PASSWORD)
    assert result == {
        "name": "alice",
        "auth_state": {
            "proj1.brics": {"name": "Dev project proj1", "username": "alice.proj1"},
            "proj2.brics": {"name": "Dev project proj2", "username": "alice.proj2"},
        },
    }


def test_dummy_authenticator_compares_in_constant_time(loader):
    source = inspect.getsource(make_dummy_authenticator(loader).authenticate)
    assert "hmac.compare_digest" in source


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_every_setting_is_a_known_trait_of_the_right_type(loader, name):
    config = loader(env_for(name))
    classes = dict(CONFIGURED_CLASSES, DummyBricsAuthenticator=config.JupyterHub.authenticator_class)
    assert set(config) <= set(classes) | {"Application"}, set(config) - set(classes)
    for section, cls in classes.items():
        if section not in config:
            continue
        unknown = set(config[section]) - set(cls.class_trait_names(config=True))
        assert not unknown, f"{section}: not configurable traits: {unknown}"
        cls(config=config)  # applying the config raises TraitError on a wrong type


class FakeUser:
    """The hub's User as the spawner sees it after a restart: auth_state comes from the database."""

    def __init__(self, auth_state):
        self.auth_state = auth_state
        self.reads = 0

    async def get_auth_state(self):
        self.reads += 1
        return self.auth_state


@pytest.mark.parametrize("first", ["poll", "stop"])
def test_spawner_restores_auth_state_before_first_poll_or_stop_after_a_hub_restart(loader, first):
    config = loader(env_for("dev_dummyauth"))
    persisted = {"proj1.brics": {"name": "Project 1", "username": "alice.proj1"}}
    user = FakeUser(persisted)
    spawner = config.JupyterHub.spawner_class(user=user)

    async def scenario():
        if first == "poll":
            await spawner.poll()
        else:
            await spawner.stop(now=True)
        await spawner.poll()

    asyncio.run(scenario())
    expected_first = ("poll",) if first == "poll" else ("stop", True)
    assert spawner.calls == [("auth_state_hook", persisted), expected_first, ("poll",)]
    assert user.reads == 1, "auth_state is read once, not at every poll"


def test_spawner_does_not_reload_auth_state_after_a_spawn_ran_the_hook(loader):
    config = loader(env_for("prod"))
    user = FakeUser({"stale": {}})
    spawner = config.JupyterHub.spawner_class(user=user)
    fresh = {"proj1.brics": {"name": "Project 1", "username": "alice.proj1"}}

    async def scenario():
        await spawner.run_auth_state_hook(fresh)  # what JupyterHub does when the user spawns
        await spawner.poll()

    asyncio.run(scenario())
    assert spawner.calls == [("auth_state_hook", fresh), ("poll",)]
    assert user.reads == 0
