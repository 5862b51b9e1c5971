"""apply_config(settings, c): the JupyterHub configuration of every brics-env environment."""

import html
import urllib.parse
from importlib.metadata import entry_points

# Importing batchspawner registers its Hub API handler, through which jobs report their port.
import batchspawner  # noqa: F401
from jupyterhub.app import JupyterHub

from .auth import DummyBricsAuthenticator, brics_authenticator_class
from .idle import idle_shutdown_args
from .recognised import check_recognised
from .services import apply_services
from .settings import HubConfigError
from .slurm import SRV_DIR, batch_cancel_cmd, batch_query_cmd, batch_script, batch_submit_cmd
from .spawner import hub_spawner_class

# The name bricsauthenticator registers its authenticator and spawner under.
PLUGIN_NAME = "brics"


def installed_plugin(group):
    """A class through its published entry point, so the config does not depend on the package's module layout."""
    found = entry_points(group=group, name=PLUGIN_NAME)
    if not found:
        raise HubConfigError(f"no {group} entry point named {PLUGIN_NAME!r}: is bricsauthenticator installed in the hub image?")
    return next(iter(found)).load()


def logout_redirect_url(base_url):
    """Zenith's OAuth2 proxy sign-out, then back to the service; no '//' when baseUrl is '/'."""
    prefix = base_url.rstrip("/")
    return f"{prefix}/_oidc/sign_out?rd={urllib.parse.quote(prefix + '/', safe='')}"


def apply_config(settings, c):
    """Sets `c` (a traitlets Config) from `settings` (settings.Settings), then checks that the
    installed classes recognise every setting."""
    c.Application.log_level = settings["logLevel"]

    base_url = settings["baseUrl"]
    # Each port only where its clients are. Behind Zenith the client in the pod forwards to
    # 127.0.0.1:8000; otherwise the port is published on the host (on 127.0.0.1).
    c.JupyterHub.bind_url = f"http://{'127.0.0.1' if settings.ingress == 'zenith' else ''}:8000{base_url}"
    # User servers call back to the Hub API: from the Slurm container, over the pod's loopback; from
    # an external Slurm's nodes, through the port the manifest publishes on hubConnectUrl's address.
    c.JupyterHub.hub_bind_url = f"http://{'127.0.0.1' if settings.slurm == 'pod' else '0.0.0.0'}:8081"
    c.JupyterHub.db_url = f"sqlite:///{SRV_DIR}/jupyterhub.sqlite"
    c.JupyterHub.cookie_secret_file = f"{SRV_DIR}/jupyterhub_cookie_secret"
    # The signed cookie value expires after 12 h.
    c.JupyterHub.cookie_max_age_days = 0.5
    # Servers are batch jobs: let them outlive a hub restart.
    c.JupyterHub.cleanup_servers = False
    # /hub/metrics answers only a token with read:metrics (the prometheus service's).
    c.JupyterHub.authenticate_prometheus = True
    apply_services(settings.services, c)

    # auth_state carries the projects to the spawner; JUPYTERHUB_CRYPT_KEY is set by start-jupyterhub.
    c.Authenticator.enable_auth_state = True
    c.Authenticator.admin_users = set(settings["adminUsers"])
    c.JupyterHub.concurrent_spawn_limit = settings["concurrentSpawnLimit"]
    c.JupyterHub.active_server_limit = settings["activeServerLimit"]
    announcement = settings["announcement"]
    if announcement:
        # page.html renders it with `| safe`: escaped here, so it is shown as the text it is.
        c.JupyterHub.template_vars = {"announcement": html.escape(announcement)}

    if settings.auth == "dummy":
        c.JupyterHub.authenticator_class = DummyBricsAuthenticator
        c.DummyBricsAuthenticator.shared_password = settings["dummyAuthPassword"]
        c.DummyBricsAuthenticator.dev_users = settings["devUsers"]
    elif settings.auth == "jwt":
        c.JupyterHub.authenticator_class = brics_authenticator_class(installed_plugin("jupyterhub.authenticators"))
        c.BricsAuthenticator.oidc_server = settings["oidcServer"]
        c.BricsAuthenticator.brics_platform = settings["bricsPlatform"]
        c.BricsAuthenticator.jwt_audience = settings["jwtAudience"]
        c.BricsAuthenticator.jwt_leeway = 5
        c.BricsAuthenticator.invalid_jwt_logout = True
        c.BricsAuthenticator.logout_redirect_url = logout_redirect_url(base_url)
    else:
        raise HubConfigError(f"authentication {settings.auth!r} of {settings.environment} is not one this hub module knows")

    c.JupyterHub.spawner_class = hub_spawner_class(installed_plugin("jupyterhub.spawners"), settings.account_rule)
    spawner = c.BricsSlurmSpawner
    spawner.hub_connect_url = settings["hubConnectUrl"]
    # Only what the job needs crosses to Slurm (keepvars); the hub's PATH etc. mean nothing there.
    spawner.env_keep = []
    # JUPYTERHUB_* so that the sudo policy's env_keep lets them through to sbatch.
    spawner.environment = {
        "JUPYTERHUB_BRICS_CONDA_PREFIX_DIR": settings["condaPrefixDir"],
        "JUPYTERHUB_BRICS_JUPYTER_DATA_DIR": settings["jupyterDataDir"],
    }
    spawner.notebook_dir = "~/"
    spawner.args = idle_shutdown_args(settings["idleTimeout"])
    spawner.start_timeout = 420
    spawner.poll_interval = settings["pollInterval"]
    spawner.startup_poll_interval = settings["startupPollInterval"]
    # srun would otherwise pass on only sbatch's --export list; ALL keeps what the batch script set up.
    spawner.req_srun = "srun --export=ALL"
    spawner.req_options = "--nodes=1"
    spawner.batch_script = batch_script(settings.slurm)
    wrappers_bin = settings["slurmSpawnerWrappersBin"].rstrip("/")
    ssh_host = settings["sshHostname"]
    # The commands run ssh themselves (slurm.py), so nothing goes in front of them.
    spawner.exec_prefix = ""
    spawner.batch_submit_cmd = batch_submit_cmd(ssh_host, wrappers_bin)
    spawner.batch_query_cmd = batch_query_cmd(ssh_host, wrappers_bin)
    spawner.batch_cancel_cmd = batch_cancel_cmd(ssh_host, wrappers_bin)

    check_recognised(c, JupyterHub)
