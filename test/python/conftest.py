"""
Stand-ins for jupyterhub and batchspawner (not installable here), registered in sys.modules before
jupyterhub_config.py is loaded. They mirror only the published interface the config relies on:
jupyterhub.auth.Authenticator (a traitlets Configurable with allow_all and an async
authenticate(handler, data)), and batchspawner's template rendering (format_template) and job-state
classification (BatchSpawnerBase.query_job_status with SlurmSpawner's regexes), as of batchspawner 1.3.
"""

import enum
import logging
import re
import runpy
import sys
import types
from pathlib import Path

import pytest
from jinja2 import Template
from traitlets import Any, Bool, Dict, Float, Integer, List, Unicode
from traitlets.config import Config, LoggingConfigurable

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = REPO_ROOT / "volumes/jupyterhub_root/etc/jupyterhub/jupyterhub_config.py"


# --- jupyterhub ------------------------------------------------------------------------------


class Authenticator(LoggingConfigurable):
    allow_all = Bool(False).tag(config=True)
    manage_groups = Bool(False).tag(config=True)
    enable_auth_state = Bool(False).tag(config=True)
    logout_redirect_url = Unicode("").tag(config=True)

    async def authenticate(self, handler, data):
        raise NotImplementedError


# Trait types of the classes the config sets (JupyterHub 5.x, batchspawner 1.3, bricsauthenticator 0.8),
# so that a value of the wrong type fails here as it would when JupyterHub applies the config.


class JupyterHub(LoggingConfigurable):
    bind_url = Unicode().tag(config=True)
    hub_bind_url = Unicode().tag(config=True)
    db_url = Unicode().tag(config=True)
    cookie_secret_file = Unicode().tag(config=True)
    cookie_max_age_days = Float().tag(config=True)
    cleanup_servers = Bool().tag(config=True)
    authenticator_class = Any().tag(config=True)
    spawner_class = Any().tag(config=True)


class Spawner(LoggingConfigurable):
    hub_connect_url = Unicode().tag(config=True)
    env_keep = List().tag(config=True)
    environment = Dict().tag(config=True)
    notebook_dir = Unicode().tag(config=True)
    start_timeout = Integer().tag(config=True)
    poll_interval = Integer().tag(config=True)


class BricsSlurmSpawner(Spawner):
    """batchspawner.SlurmSpawner's configurable traits, as bricsauthenticator's BricsSlurmSpawner inherits them."""

    startup_poll_interval = Float().tag(config=True)
    exec_prefix = Unicode().tag(config=True)
    batch_script = Unicode().tag(config=True)
    batch_submit_cmd = Unicode().tag(config=True)
    batch_query_cmd = Unicode().tag(config=True)
    batch_cancel_cmd = Unicode().tag(config=True)
    state_unknown_re = Unicode().tag(config=True)
    req_srun = Unicode().tag(config=True)
    req_options = Unicode().tag(config=True)

    # Spawner's async interface as JupyterHub drives it; records the calls so tests can see order.
    def __init__(self, user=None, **kwargs):
        super().__init__(**kwargs)
        self.user = user
        self.calls = []

    async def run_auth_state_hook(self, auth_state):
        self.calls.append(("auth_state_hook", auth_state))

    async def poll(self):
        self.calls.append(("poll",))
        return None

    async def stop(self, now=False):
        self.calls.append(("stop", now))


class BricsAuthenticator(Authenticator):
    oidc_server = Unicode().tag(config=True)
    brics_platform = Unicode().tag(config=True)
    jwt_audience = Unicode().tag(config=True)
    jwt_leeway = Float().tag(config=True)
    invalid_jwt_logout = Bool().tag(config=True)


CONFIGURED_CLASSES = {
    "JupyterHub": JupyterHub,
    "BricsSlurmSpawner": BricsSlurmSpawner,
    "BricsAuthenticator": BricsAuthenticator,
    "Authenticator": Authenticator,
}

jupyterhub_mod = types.ModuleType("jupyterhub")
jupyterhub_auth_mod = types.ModuleType("jupyterhub.auth")
jupyterhub_auth_mod.Authenticator = Authenticator
jupyterhub_mod.auth = jupyterhub_auth_mod


# --- batchspawner ----------------------------------------------------------------------------


def format_template(template, *args, **kwargs):
    """batchspawner.format_template: Jinja2 when the template has {{ or {%, else str.format."""
    if isinstance(template, Template):
        return template.render(*args, **kwargs)
    if "{{" in template or "{%" in template:
        return Template(template).render(*args, **kwargs)
    return template.format(*args, **kwargs)


class JobStatus(enum.Enum):
    NOTFOUND = 0
    RUNNING = 1
    PENDING = 2
    UNKNOWN = 3


# SlurmSpawner's defaults in batchspawner 1.3
SLURM_STATE_PENDING_RE = r"^(?:PENDING|CONFIGURING)"
SLURM_STATE_RUNNING_RE = r"^(?:RUNNING|COMPLETING)"


def classify_job_status(job_status, state_unknown_re, pending_re=SLURM_STATE_PENDING_RE, running_re=SLURM_STATE_RUNNING_RE):
    """BatchSpawnerBase.query_job_status after run_command: on a non-zero exit the job status is the
    command's stripped stderr (run_command raises RuntimeError(stderr)), else its stripped stdout."""
    if job_status and re.search(running_re, job_status):
        return JobStatus.RUNNING
    if job_status and re.search(pending_re, job_status):
        return JobStatus.PENDING
    if state_unknown_re and job_status and re.search(state_unknown_re, job_status):
        return JobStatus.UNKNOWN
    return JobStatus.NOTFOUND


batchspawner_mod = types.ModuleType("batchspawner")
batchspawner_mod.format_template = format_template
batchspawner_mod.JobStatus = JobStatus

sys.modules.setdefault("jupyterhub", jupyterhub_mod)
sys.modules.setdefault("jupyterhub.auth", jupyterhub_auth_mod)
sys.modules.setdefault("batchspawner", batchspawner_mod)


# --- loading the config ----------------------------------------------------------------------

ENVIRONMENTS = {
    "dev_dummyauth": ("dummy", "pod"),
    "dev_dummyauth_extslurm": ("dummy", "external"),
    "dev_realauth": ("jwt", "pod"),
    "dev_realauth_zenithclient": ("jwt", "pod"),
    "prod": ("jwt", "external"),
}

COMMON_ENV = {
    "DEPLOY_CONFIG_LOG_LEVEL": "INFO",
    "DEPLOY_CONFIG_BASE_URL": "/",
    "DEPLOY_CONFIG_SSH_HOSTNAME": "localhost",
    "DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN": "/opt/jupyter/slurmspawner_wrappers/bin",
    "DEPLOY_CONFIG_CONDA_PREFIX_DIR": "/opt/jupyter/miniforge3",
    "DEPLOY_CONFIG_JUPYTER_DATA_DIR": "/opt/jupyter/jupyter_data",
    "DEPLOY_CONFIG_HUB_CONNECT_URL": "http://jupyterhub-slurm-test:8081",
}
DUMMY_ENV = {
    "DEPLOY_CONFIG_DEV_USERS": "alice.proj1 alice.proj2 bob.proj1",
    "DEPLOY_CONFIG_DUMMYAUTH_PASSWORD": "s3cret pass'word",
}
JWT_ENV = {
    "DEPLOY_CONFIG_OIDC_SERVER": "https://keycloak.example/realms/test",
    "DEPLOY_CONFIG_BRICS_PLATFORM": "brics.test.notebooks.shared",
    "DEPLOY_CONFIG_JWT_AUDIENCE": "zenith-jupyter",
}


def env_for(name):
    auth, slurm = ENVIRONMENTS[name]
    env = {"BRICS_ENV_NAME": name, "BRICS_ENV_AUTH": auth, "BRICS_ENV_SLURM": slurm, **COMMON_ENV}
    env.update(DUMMY_ENV if auth == "dummy" else JWT_ENV)
    return env


def load_config(monkeypatch, environ):
    """Run jupyterhub_config.py the way JupyterHub's loader does (get_config() in its namespace)
    with exactly `environ` as the DEPLOY_CONFIG_*/BRICS_ENV_* environment. Returns (config, namespace)."""
    import os

    for var in list(os.environ):
        if var.startswith(("DEPLOY_CONFIG_", "BRICS_ENV_")):
            monkeypatch.delenv(var)
    for var, value in environ.items():
        monkeypatch.setenv(var, value)
    # bricsauthenticator's published entry point, as importlib.metadata would find it installed.
    import importlib.metadata

    class BricsEntryPoint:
        def load(self):
            return BricsSlurmSpawner

    def entry_points(**selection):
        return [BricsEntryPoint()] if selection == {"group": "jupyterhub.spawners", "name": "brics"} else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    config = Config()
    namespace = runpy.run_path(str(CONFIG_FILE), init_globals={"get_config": lambda: config})
    return config, namespace


@pytest.fixture
def loader(monkeypatch):
    return lambda environ: load_config(monkeypatch, environ)


logging.basicConfig(level=logging.DEBUG)
