"""jupyterhub_config.py: loads for every environment, reports missing settings, dummy login."""

import asyncio

import pytest
from conftest import CONFIGURED_CLASSES, ENVIRONMENTS, env_for


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_config_loads_for_every_environment(loader, name):
    config, ns = loader(env_for(name))
    auth, slurm = ENVIRONMENTS[name]
    hub = config.JupyterHub
    assert hub.bind_url == "http://:8000/"
    assert hub.hub_bind_url == "http://0.0.0.0:8081"
    assert hub.cookie_max_age_days == 0.5
    assert hub.cleanup_servers is False
    assert issubclass(hub.spawner_class, CONFIGURED_CLASSES["BricsSlurmSpawner"])
    assert config.Authenticator.enable_auth_state is True
    sp = config.BricsSlurmSpawner
    assert sp.hub_connect_url == "http://jupyterhub-slurm-test:8081"
    assert sp.env_keep == []
    assert sp.environment == {
        "JUPYTERHUB_BRICS_CONDA_PREFIX_DIR": "/opt/jupyter/miniforge3",
        "JUPYTERHUB_BRICS_JUPYTER_DATA_DIR": "/opt/jupyter/jupyter_data",
    }
    assert sp.start_timeout == 420
    assert sp.poll_interval == 60 and isinstance(sp.poll_interval, int)
    assert sp.startup_poll_interval == 15
    assert sp.req_srun == "srun --export=ALL"
    assert sp.req_options == "--nodes=1"
    assert sp.notebook_dir == "~/"
    assert sp.exec_prefix.startswith("ssh -i /srv/jupyterhub/ssh_key -o BatchMode=yes -o StrictHostKeyChecking=yes")
    assert sp.exec_prefix.endswith("jupyterspawner@localhost sudo -u {{username}}")
    if auth == "dummy":
        assert hub.authenticator_class is ns["DummyBricsAuthenticator"]
        assert "BricsAuthenticator" not in config
    else:
        assert hub.authenticator_class == "brics"
        ba = config.BricsAuthenticator
        assert ba.oidc_server == "https://keycloak.example/realms/test"
        assert ba.brics_platform == "brics.test.notebooks.shared"
        assert ba.jwt_audience == "zenith-jupyter"
        assert ba.jwt_leeway == 5
        assert ba.invalid_jwt_logout is True
        assert ba.logout_redirect_url == "/_oidc/sign_out?rd=%2F"
    script = sp.batch_script
    assert "#SBATCH --get-user-env\n" in script
    assert ("--gpus" in script) == (slurm == "external")


def test_base_url_and_optional_poll_intervals(loader):
    env = env_for("prod") | {
        "DEPLOY_CONFIG_BASE_URL": "/jupyter/",
        "DEPLOY_CONFIG_POLL_INTERVAL": "90",
        "DEPLOY_CONFIG_STARTUP_POLL_INTERVAL": "2.5",
    }
    config, _ = loader(env)
    assert config.JupyterHub.bind_url == "http://:8000/jupyter/"
    assert config.BricsAuthenticator.logout_redirect_url == "/jupyter/_oidc/sign_out?rd=%2Fjupyter%2F"
    assert config.BricsSlurmSpawner.poll_interval == 90
    assert isinstance(config.BricsSlurmSpawner.poll_interval, int)  # an Integer trait
    assert config.BricsSlurmSpawner.startup_poll_interval == 2.5


def test_upstream_base_url_without_slash_and_no_log_level(loader):
    # Upstream's prod example: baseUrl "/jupyter", no logLevel.
    env = env_for("prod") | {"DEPLOY_CONFIG_BASE_URL": "/jupyter"}
    del env["DEPLOY_CONFIG_LOG_LEVEL"]
    config, _ = loader(env)
    assert config.JupyterHub.bind_url == "http://:8000/jupyter/"
    assert config.BricsAuthenticator.logout_redirect_url == "/jupyter/_oidc/sign_out?rd=%2Fjupyter%2F"
    assert config.Application.log_level == "INFO"


def test_missing_variables_are_all_named(loader):
    env = env_for("dev_dummyauth")
    del env["DEPLOY_CONFIG_SSH_HOSTNAME"]
    del env["DEPLOY_CONFIG_DUMMYAUTH_PASSWORD"]
    env["DEPLOY_CONFIG_HUB_CONNECT_URL"] = ""
    with pytest.raises(RuntimeError) as err:
        loader(env)
    message = str(err.value)
    assert "DEPLOY_CONFIG_SSH_HOSTNAME (deploy-config key 'sshHostname')" in message
    assert "DEPLOY_CONFIG_DUMMYAUTH_PASSWORD (deploy-config key 'dummyAuthPassword')" in message
    assert "DEPLOY_CONFIG_HUB_CONNECT_URL (deploy-config key 'hubConnectUrl')" in message
    assert "DEPLOY_CONFIG_LOG_LEVEL" not in message


def test_jwt_environment_does_not_need_dummy_settings_but_needs_jwt_ones(loader):
    env = env_for("prod")
    del env["DEPLOY_CONFIG_JWT_AUDIENCE"]
    with pytest.raises(RuntimeError) as err:
        loader(env)
    assert "DEPLOY_CONFIG_JWT_AUDIENCE (deploy-config key 'jwtAudience')" in str(err.value)
    assert "DUMMYAUTH" not in str(err.value)


def test_environment_kind_must_be_set_by_the_manifest(loader):
    env = env_for("prod")
    del env["BRICS_ENV_AUTH"]
    env["BRICS_ENV_SLURM"] = "cloud"
    with pytest.raises(RuntimeError) as err:
        loader(env)
    assert "BRICS_ENV_AUTH must be one of dummy, jwt" in str(err.value)
    assert "BRICS_ENV_SLURM must be one of pod, external (got 'cloud')" in str(err.value)


@pytest.mark.parametrize(
    "var, value, expected",
    [
        ("DEPLOY_CONFIG_SSH_HOSTNAME", "host; rm -rf /", "a host name or IP address"),
        ("DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN", "relative/bin", "an absolute path"),
        ("DEPLOY_CONFIG_BASE_URL", "/a b/", "a URL path"),
        ("DEPLOY_CONFIG_LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("DEPLOY_CONFIG_DEV_USERS", "Alice.proj1", "invalid names Alice.proj1"),
        ("DEPLOY_CONFIG_POLL_INTERVAL", "soon", "a positive whole number of seconds"),
        ("DEPLOY_CONFIG_POLL_INTERVAL", "1.5", "a positive whole number of seconds"),
        ("DEPLOY_CONFIG_STARTUP_POLL_INTERVAL", "-1", "a positive number of seconds"),
    ],
)
def test_malformed_values_are_refused(loader, var, value, expected):
    env = env_for("dev_dummyauth") | {var: value}
    with pytest.raises(RuntimeError) as err:
        loader(env)
    assert expected in str(err.value)


def make_dummy_authenticator(loader):
    config, ns = loader(env_for("dev_dummyauth"))
    cls = config.JupyterHub.authenticator_class
    return cls(config=config), ns


def login(authenticator, username, password):
    return asyncio.run(authenticator.authenticate(None, {"username": username, "password": password}))


def test_dummy_authenticator_accepts_only_the_shared_password(loader):
    authenticator, _ = make_dummy_authenticator(loader)
    assert authenticator.allow_all is True
    assert login(authenticator, "alice", "wrong") is None
    assert login(authenticator, "alice", "") is None
    assert login(authenticator, "alice", "s3cret pass'word ") is None
    assert login(authenticator, "alice", "s3cret pass'word") is not None


def test_dummy_authenticator_ignores_the_form_username_and_returns_brics_auth_state(loader):
    authenticator, _ = make_dummy_authenticator(loader)
    result = login(authenticator, "mallory", "s3cret pass'word")
    assert result == {
        "name": "alice",
        "auth_state": {
            "proj1.brics": {"name": "Dev project proj1", "username": "alice.proj1"},
            "proj2.brics": {"name": "Dev project proj2", "username": "alice.proj2"},
        },
    }


def test_dummy_authenticator_compares_in_constant_time(loader):
    _, ns = make_dummy_authenticator(loader)
    import inspect

    source = inspect.getsource(ns["DummyBricsAuthenticator"].authenticate)
    assert "hmac.compare_digest" in source


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_every_setting_is_a_known_trait_of_the_right_type(loader, name):
    config, ns = loader(env_for(name))
    classes = dict(CONFIGURED_CLASSES, DummyBricsAuthenticator=ns["DummyBricsAuthenticator"])
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
    config, _ = loader(env_for("dev_dummyauth"))
    persisted = {"proj1.brics": {"name": "Project 1", "username": "alice.proj1"}}
    user = FakeUser(persisted)
    spawner = config.JupyterHub.spawner_class(user=user)

    async def scenario():
        if first == "poll":
            assert await spawner.poll() is None
        else:
            await spawner.stop(now=True)
        await spawner.poll()

    asyncio.run(scenario())
    expected_first = ("poll",) if first == "poll" else ("stop", True)
    assert spawner.calls == [("auth_state_hook", persisted), expected_first, ("poll",)]
    assert user.reads == 1, "auth_state is read once, not at every poll"


def test_spawner_does_not_reload_auth_state_after_a_spawn_ran_the_hook(loader):
    config, _ = loader(env_for("prod"))
    user = FakeUser({"stale": {}})
    spawner = config.JupyterHub.spawner_class(user=user)
    fresh = {"proj1.brics": {"name": "Project 1", "username": "alice.proj1"}}

    async def scenario():
        await spawner.run_auth_state_hook(fresh)  # what JupyterHub does when the user spawns
        await spawner.poll()

    asyncio.run(scenario())
    assert spawner.calls == [("auth_state_hook", fresh), ("poll",)]
    assert user.reads == 0
