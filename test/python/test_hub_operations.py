"""Settings platform teams ask for: admin users, server limits, an announcement on every page, and
servers that shut themselves down when idle so their Slurm job frees its allocation."""

import pytest
from conftest import env_for

from brics_hub import HubConfigError, load_settings
from brics_hub.idle import idle_shutdown_args


def with_values(name="prod", **values):
    env = env_for(name)
    for var, value in values.items():
        env[f"DEPLOY_CONFIG_{var}"] = value
    return env


def test_defaults_no_admins_the_usual_limits_no_announcement(loader):
    config = loader(env_for("prod"))
    assert config.Authenticator.admin_users == set()
    assert config.JupyterHub.concurrent_spawn_limit == 100
    assert config.JupyterHub.active_server_limit == 0
    assert "announcement" not in config.JupyterHub.get("template_vars", {})


def test_admin_users_and_limits_are_set_from_the_configmap(loader):
    config = loader(with_values(ADMIN_USERS="alice bob", CONCURRENT_SPAWN_LIMIT="5", ACTIVE_SERVER_LIMIT="40"))
    assert config.Authenticator.admin_users == {"alice", "bob"}
    assert config.JupyterHub.concurrent_spawn_limit == 5
    assert config.JupyterHub.active_server_limit == 40
    assert isinstance(config.JupyterHub.active_server_limit, int)


def test_an_empty_admin_list_means_no_admins(loader):
    assert loader(with_values("dev_dummyauth", ADMIN_USERS="")).Authenticator.admin_users == set()


@pytest.mark.parametrize("value", ["many", "-1", "2.5", "٣"])
def test_a_limit_that_is_not_a_whole_number_names_its_key(value):
    with pytest.raises(HubConfigError) as err:
        load_settings(with_values(ACTIVE_SERVER_LIMIT=value))
    assert f"activeServerLimit (DEPLOY_CONFIG_ACTIVE_SERVER_LIMIT) = {value!r} is not a whole number" in str(err.value)


def test_the_announcement_is_shown_as_text_not_html(loader):
    # JupyterHub's page.html renders `announcement` with `| safe`.
    text = 'Maintenance <script>alert("x")</script> on Friday & Saturday'
    shown = loader(with_values(ANNOUNCEMENT=text)).JupyterHub.template_vars["announcement"]
    assert shown == "Maintenance &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; on Friday &amp; Saturday"
    assert "<" not in shown


def test_an_empty_announcement_shows_nothing(loader):
    assert "template_vars" not in loader(with_values(ANNOUNCEMENT="")).JupyterHub


def test_idle_servers_shut_themselves_down_after_an_hour_by_default(loader):
    args = loader(env_for("prod")).BricsSlurmSpawner.args
    assert "--ServerApp.shutdown_no_activity_timeout=3600" in args
    assert "--MappingKernelManager.cull_idle_timeout=3600" in args
    assert "--MappingKernelManager.cull_connected=True" in args
    assert "--MappingKernelManager.cull_interval=60" in args
    assert "--TerminalManager.cull_inactive_timeout=3600" in args


def test_a_short_idle_timeout_checks_as_often_as_the_timeout():
    args = idle_shutdown_args(20)
    assert "--ServerApp.shutdown_no_activity_timeout=20" in args
    assert "--MappingKernelManager.cull_interval=20" in args
    assert "--TerminalManager.cull_interval=20" in args
    assert not any("cull_busy" in a for a in args), "a kernel running code is never culled"


def test_idle_timeout_0_turns_it_off(loader):
    assert loader(with_values(IDLE_TIMEOUT="0")).BricsSlurmSpawner.args == []


@pytest.mark.parametrize("name", ["dev_dummyauth", "prod"])
def test_the_idle_settings_reach_the_server_command_in_the_batch_script(loader, name):
    config = loader(with_values(name, IDLE_TIMEOUT="90"))
    spawner = config.JupyterHub.spawner_class(config=config)
    cmd = spawner.cmd_formatted_for_batch()
    assert cmd.startswith("batchspawner-singleuser jupyterhub-singleuser --ServerApp.shutdown_no_activity_timeout=90 ")
    # Each setting is one shell word: nothing in them needs quoting in the batch script.
    assert all(a.replace("--", "", 1).replace(".", "").replace("_", "").replace("=", "").isalnum() for a in spawner.args)
