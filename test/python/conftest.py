"""
The hub module (volumes/jupyterhub_root/etc/jupyterhub/brics_hub) under test, with stand-ins for
what cannot be installed here: jupyterhub, batchspawner, bricsauthenticator and tornado, registered
in sys.modules before the module is imported. They mirror only the published interfaces the hub
module relies on, as of JupyterHub 5.2, batchspawner 1.3, bricsauthenticator v0.7.0 and the newer
release the pins name (v0.8.0), and tornado 6: the trait types of every class the config sets,
batchspawner's template rendering, command running, job submission and job-state classification,
and the handlers the authenticator registers.

The environments come from test/golden/hub_environment.json: each hub container's environment as
the manifest and the example deploy ConfigMap give it (kept true by test/unit/hubSettings.test.ts).
"""

import asyncio
import enum
import http.client
import json
import logging
import re
import sys
import types
from pathlib import Path

import pytest
from fake_remote import fake_remote  # noqa: F401  (a fixture for every test module)
from jinja2 import Template
from traitlets import Any, Bool, Dict, Float, Integer, List, Set, Unicode
from traitlets.config import Application, Config, LoggingConfigurable

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "volumes/jupyterhub_root/etc/jupyterhub"
CONFIG_FILE = CONFIG_DIR / "jupyterhub_config.py"
HUB_ENVIRONMENTS = json.loads((REPO_ROOT / "test/golden/hub_environment.json").read_text())

# No __pycache__ in the volume tree (it would be copied into every environment's volume).
sys.dont_write_bytecode = True


def module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


# --- tornado ---------------------------------------------------------------------------------


class HTTPError(Exception):
    """tornado.web.HTTPError (tornado 6): the status, a %-format log_message with its args, a reason phrase."""

    def __init__(self, status_code=500, log_message=None, *args, **kwargs):
        self.status_code = status_code
        self.log_message = log_message
        self.args = args
        self.reason = kwargs.get("reason", None)
        if log_message and not args:
            self.log_message = log_message.replace("%", "%%")

    def __str__(self):
        message = f"HTTP {self.status_code}: {self.reason or http.client.responses.get(self.status_code, 'Unknown')}"
        return message + (f" ({self.log_message % self.args})" if self.log_message else "")


module("tornado")
module("tornado.web", HTTPError=HTTPError)


# --- jupyterhub ------------------------------------------------------------------------------


def url_path_join(*pieces):
    """jupyterhub.utils.url_path_join: join with single slashes, keeping the first and last."""
    joined = "/".join(p.strip("/") for p in pieces if p.strip("/"))
    joined = ("/" if pieces[0].startswith("/") else "") + joined + ("/" if pieces[-1].endswith("/") else "")
    return "/" if joined == "//" else joined


class Handler:
    """The part of JupyterHub's BaseHandler (a tornado RequestHandler) that login/logout handlers use."""

    def __init__(self, authenticator, headers=None, hub_base_url="/hub/", login_url="/hub/login"):
        self.authenticator = authenticator
        self.request = types.SimpleNamespace(headers=dict(headers or {}))
        self.hub = types.SimpleNamespace(base_url=hub_base_url)
        self.settings = {"login_url": login_url}
        self.log = logging.getLogger("handler")
        self.redirected_to = None

    def redirect(self, url, permanent=False):
        self.redirected_to = url


class LoginHandler(Handler):
    async def get(self):
        raise NotImplementedError


class LogoutHandler(Handler):
    async def render_logout_page(self):
        # JupyterHub 5.2 without auto_login: back to the login page.
        self.redirect(self.settings["login_url"], permanent=False)

    async def get(self):
        await self.render_logout_page()


class Authenticator(LoggingConfigurable):
    """jupyterhub.auth.Authenticator (5.2): no logout_redirect_url, only /login of its own."""

    allow_all = Bool(False).tag(config=True)
    admin_users = Set().tag(config=True)
    manage_groups = Bool(False).tag(config=True)
    enable_auth_state = Bool(False).tag(config=True)
    auto_login = Bool(False).tag(config=True)

    async def authenticate(self, handler, data):
        raise NotImplementedError

    def get_handlers(self, app):
        return [("/login", LoginHandler)]


# Trait types of the classes the config sets (JupyterHub 5.2, batchspawner 1.3), so that a value of
# the wrong type fails here as it would when JupyterHub applies the config.


class JupyterHub(Application):
    bind_url = Unicode().tag(config=True)
    hub_bind_url = Unicode().tag(config=True)
    db_url = Unicode().tag(config=True)
    cookie_secret_file = Unicode().tag(config=True)
    cookie_max_age_days = Float().tag(config=True)
    cleanup_servers = Bool().tag(config=True)
    concurrent_spawn_limit = Integer().tag(config=True)
    active_server_limit = Integer().tag(config=True)
    template_vars = Dict().tag(config=True)
    authenticate_prometheus = Bool(True).tag(config=True)
    services = List().tag(config=True)
    load_roles = List().tag(config=True)
    authenticator_class = Any().tag(config=True)
    spawner_class = Any().tag(config=True)


class Spawner(LoggingConfigurable):
    hub_connect_url = Unicode().tag(config=True)
    env_keep = List().tag(config=True)
    environment = Dict().tag(config=True)
    notebook_dir = Unicode().tag(config=True)
    args = List(Unicode()).tag(config=True)
    start_timeout = Integer().tag(config=True)
    poll_interval = Integer().tag(config=True)

    def __init__(self, user=None, **kwargs):
        super().__init__(**kwargs)
        self.user = user
        self.user_options = {}

    def get_env(self):
        return {**self.environment, "JUPYTERHUB_API_TOKEN": "secret-token", **self.user_env({})}

    def get_args(self):
        # JupyterHub >= 2 passes only Spawner.args on the command line (the rest goes by environment).
        return list(self.args)

    def user_env(self, env):
        return env

    async def run_auth_state_hook(self, auth_state):
        pass


module("jupyterhub")
module("jupyterhub.auth", Authenticator=Authenticator)
module("jupyterhub.app", JupyterHub=JupyterHub)
module("jupyterhub.handlers", BaseHandler=Handler)
module("jupyterhub.handlers.login", LoginHandler=LoginHandler, LogoutHandler=LogoutHandler)
module("jupyterhub.spawner", Spawner=Spawner)
module("jupyterhub.utils", url_path_join=url_path_join)


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


class SlurmSpawner(Spawner):
    """batchspawner.SlurmSpawner (1.3) as far as the hub module meets it: its configurable traits, and
    how a spawn runs and fails. run_command raises RuntimeError(<stderr>) on a non-zero exit;
    submit_batch_script runs exec_prefix + batch_submit_cmd with the script on stdin and keeps an
    empty job id when the output is not one; start raises RuntimeError when there is no job id or the
    job leaves the queue before it runs."""

    startup_poll_interval = Float(0.5).tag(config=True)
    exec_prefix = Unicode().tag(config=True)
    batch_script = Unicode().tag(config=True)
    batch_submit_cmd = Unicode().tag(config=True)
    batch_query_cmd = Unicode().tag(config=True)
    batch_cancel_cmd = Unicode().tag(config=True)
    state_unknown_re = Unicode().tag(config=True)
    req_srun = Unicode().tag(config=True)
    req_options = Unicode().tag(config=True)
    batchspawner_singleuser_cmd = Unicode("batchspawner-singleuser").tag(config=True)
    cmd = ["jupyterhub-singleuser"]
    job_id = ""
    job_status = ""

    def cmd_formatted_for_batch(self):
        """The {cmd} of the batch script: the wrapper, Spawner.cmd and Spawner.get_args(), joined by spaces."""
        return " ".join([self.batchspawner_singleuser_cmd] + self.cmd + self.get_args())

    def subvars(self, **more):
        return {"username": self.req_username, "homedir": self.req_homedir, "keepvars": ",".join(self.get_env()), **more}

    async def run_command(self, cmd, input=None, env=None):
        proc = await asyncio.create_subprocess_shell(
            cmd, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate(input.encode() if input else None)
        if proc.returncode != 0:
            self.log.error("Subprocess returned exitcode %s", proc.returncode)
            raise RuntimeError(err.decode().strip())
        return out.decode().strip()

    def parse_job_id(self, output):
        job_id = output.splitlines()[-1].split(";")[0]
        int(job_id)
        return job_id

    async def submit_batch_script(self):
        subvars = self.subvars()
        cmd = " ".join((format_template(self.exec_prefix, **subvars), format_template(self.batch_submit_cmd, **subvars)))
        script = format_template(self.batch_script, cmd=self.cmd_formatted_for_batch(), **subvars, **self.user_options)
        out = await self.run_command(cmd, input=script, env=self.get_env())
        try:
            self.job_id = self.parse_job_id(out)
        except Exception:
            self.log.error("Job submission failed with exit code %s", out)
            self.job_id = ""
        return self.job_id

    async def query_job_status(self):
        subvars = self.subvars(job_id=self.job_id)
        cmd = " ".join((format_template(self.exec_prefix, **subvars), format_template(self.batch_query_cmd, **subvars)))
        try:
            self.job_status = await self.run_command(cmd, env=self.get_env())
        except RuntimeError as e:
            self.job_status = e.args[0]
        return classify_job_status(self.job_status, self.state_unknown_re)

    async def start(self):
        await self.submit_batch_script()
        if len(self.job_id) == 0:
            raise RuntimeError("Jupyter batch job submission failure (no jobid in output)")
        while True:
            status = await self.query_job_status()
            if status == JobStatus.RUNNING:
                return ("node1", 12345)
            if status == JobStatus.NOTFOUND:
                self.job_id = ""
                raise RuntimeError(
                    "The Jupyter batch job has disappeared while pending in the queue or died immediately after starting."
                )
            await asyncio.sleep(self.startup_poll_interval)


module("batchspawner", format_template=format_template, JobStatus=JobStatus, SlurmSpawner=SlurmSpawner)


# --- bricsauthenticator ----------------------------------------------------------------------


class BricsSlurmSpawner(SlurmSpawner):
    """bricsauthenticator's BricsSlurmSpawner: the job's account and home from auth_state and the form.
    Records the calls JupyterHub makes, so tests can see their order."""

    def __init__(self, user=None, **kwargs):
        super().__init__(user=user, **kwargs)
        self.calls = []
        self.brics_projects = {}

    @property
    def req_username(self):
        return self.brics_projects[self.user_options["brics_project"]]["username"]

    @property
    def req_homedir(self):
        return f"/home/{self.user_options['brics_project'].partition('.')[0]}/{self.req_username}"

    def user_env(self, env):
        return {**env, "USER": self.req_username, "HOME": self.req_homedir, "SHELL": "/bin/bash"}

    async def run_auth_state_hook(self, auth_state):
        self.calls.append(("auth_state_hook", auth_state))
        self.brics_projects = auth_state or {}

    async def poll(self):
        self.calls.append(("poll",))
        return None

    async def stop(self, now=False):
        self.calls.append(("stop", now))


class BricsLoginHandler(LoginHandler):
    """v0.7.0's /login: 401 without a token or with one that fails verification (the test sets which)."""

    outcome = None

    async def get(self):
        if not self.request.headers.get("X-Auth-Id-Token"):
            raise HTTPError(401, "Missing X-Auth-Id-Token header")
        if self.outcome is not None:
            raise self.outcome
        self.redirect("/hub/home")


class BricsAuthenticator_v0_7(Authenticator):
    """bricsauthenticator v0.7.0's BricsAuthenticator: no logout traits, only its /login handler."""

    oidc_server = Unicode().tag(config=True)
    brics_platform = Unicode().tag(config=True)
    jwt_audience = Unicode().tag(config=True)
    jwt_leeway = Float().tag(config=True)

    def get_handlers(self, app):
        return [("/login", BricsLoginHandler, {"oidc_server": self.oidc_server})]


class BricsAuthenticator_v0_8(BricsAuthenticator_v0_7):
    """The newer release: the two logout traits, implemented by the package itself."""

    logout_redirect_url = Unicode("").tag(config=True)
    invalid_jwt_logout = Bool(False).tag(config=True)


# The class name JupyterHub config sections use.
BricsAuthenticator_v0_7.__name__ = BricsAuthenticator_v0_8.__name__ = "BricsAuthenticator"

CONFIGURED_CLASSES = {
    "JupyterHub": JupyterHub,
    "BricsSlurmSpawner": BricsSlurmSpawner,
    "BricsAuthenticator": BricsAuthenticator_v0_8,
    "Authenticator": Authenticator,
}


class EntryPoint:
    def __init__(self, cls):
        self.cls = cls

    def load(self):
        return self.cls


def installed(monkeypatch, authenticator=BricsAuthenticator_v0_8, spawner=BricsSlurmSpawner):
    """bricsauthenticator's entry points (both named `brics`) as importlib.metadata finds them installed."""
    import brics_hub.config

    plugins = {"jupyterhub.authenticators": authenticator, "jupyterhub.spawners": spawner}

    def entry_points(group, name):
        return [EntryPoint(plugins[group])] if name == "brics" and group in plugins else []

    monkeypatch.setattr(brics_hub.config, "entry_points", entry_points)


# --- the environments ------------------------------------------------------------------------

ENVIRONMENTS = {name: (json.loads(env["BRICS_ENV_SETTINGS"])["auth"], json.loads(env["BRICS_ENV_SETTINGS"])["slurm"]) for name, env in HUB_ENVIRONMENTS.items()}


def env_for(name):
    """The hub container's environment in `name`, with the example deploy ConfigMap."""
    return dict(HUB_ENVIRONMENTS[name])


sys.path.insert(0, str(CONFIG_DIR))


def with_token_dir(environ, token_dir):
    """`environ` with the services' token files moved into `token_dir` (the hub keeps them in /srv/jupyterhub)."""
    if "BRICS_ENV_SETTINGS" not in environ:
        return environ
    try:
        data = json.loads(environ["BRICS_ENV_SETTINGS"])
        for service in data["services"]:
            service["tokenFile"] = str(Path(token_dir) / Path(service["tokenFile"]).name)
    except (ValueError, KeyError, TypeError):
        return environ  # malformed on purpose: the test is about that
    return {**environ, "BRICS_ENV_SETTINGS": json.dumps(data)}


def load_config(monkeypatch, environ, token_dir, authenticator=BricsAuthenticator_v0_8):
    """Run jupyterhub_config.py the way JupyterHub's loader does (get_config() in its namespace) with
    exactly `environ` as the process environment's DEPLOY_CONFIG_*/BRICS_ENV_* part, the services'
    token files in `token_dir`. Returns the config."""
    import os
    import runpy

    environ = with_token_dir(environ, token_dir)
    for var in list(os.environ):
        if var.startswith(("DEPLOY_CONFIG_", "BRICS_ENV_")):
            monkeypatch.delenv(var)
    for var, value in environ.items():
        monkeypatch.setenv(var, value)
    installed(monkeypatch, authenticator=authenticator)
    config = Config()
    runpy.run_path(str(CONFIG_FILE), init_globals={"get_config": lambda: config, "__file__": str(CONFIG_FILE)})
    return config


@pytest.fixture
def loader(monkeypatch, tmp_path):
    return lambda environ, **kw: load_config(monkeypatch, environ, kw.pop("token_dir", tmp_path), **kw)


logging.basicConfig(level=logging.DEBUG)
