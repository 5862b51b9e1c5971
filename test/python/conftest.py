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
import shlex
import sys
import types
from pathlib import Path

import pytest
from fake_remote import fake_remote  # noqa: F401  (a fixture for every test module)
from jinja2 import Template
from traitlets import Any, Bool, Dict, Float, Integer, List, Set, Unicode, default
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
    options_form = Any("").tag(config=True)
    options_from_form = Any().tag(config=True)
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

    def run_options_from_form(self, form_data):
        # JupyterHub 5.2: passes the spawner when options_from_form takes one.
        return self.options_from_form(form_data, spawner=self)


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


def classify(spawner):
    """How BatchSpawnerBase.query_job_status reads spawner.job_status, with the spawner's state_* methods."""
    if spawner.state_isrunning():
        return JobStatus.RUNNING
    if spawner.state_ispending():
        return JobStatus.PENDING
    if spawner.state_isunknown():
        return JobStatus.UNKNOWN
    return JobStatus.NOTFOUND


class SlurmSpawner(Spawner):
    """batchspawner.SlurmSpawner (1.3) as far as the hub module meets it: its configurable traits, and
    how a spawn runs and fails, method by method as in the real package. get_req_subvars hands the
    templates the req_* values; run_command raises RuntimeError(<stderr>) on a non-zero exit;
    submit_batch_script runs exec_prefix + batch_submit_cmd with the script on stdin and keeps an
    empty job id when the output is not one; query_job_status reads a failed command's stderr as the
    job status and classifies it with the state_* methods; poll drops the server (clears the state)
    unless the job is running, pending or unknown; start raises RuntimeError when there is no job id
    or the job leaves the queue before it runs; stop cancels, then queries until the job is gone."""

    startup_poll_interval = Float(0.5).tag(config=True)
    exec_prefix = Unicode("sudo -E -u {username}").tag(config=True)
    batch_script = Unicode().tag(config=True)
    batch_submit_cmd = Unicode().tag(config=True)
    batch_query_cmd = Unicode().tag(config=True)
    batch_cancel_cmd = Unicode().tag(config=True)
    state_pending_re = Unicode(r"^(?:PENDING|CONFIGURING)").tag(config=True)
    state_running_re = Unicode(r"^(?:RUNNING|COMPLETING)").tag(config=True)
    state_unknown_re = Unicode(
        r"^slurm_load_jobs error: (?:Socket timed out on send/recv|Unable to contact slurm controller)"
    ).tag(config=True)
    state_exechost_re = Unicode(r"\s+((?:[\w_-]+\.?)+)$").tag(config=True)
    req_srun = Unicode("srun").tag(config=True)
    req_options = Unicode().tag(config=True)
    # Its default is the names of get_env(), comma-separated.
    req_keepvars = Unicode()
    batchspawner_singleuser_cmd = Unicode("batchspawner-singleuser").tag(config=True)
    cmd = ["jupyterhub-singleuser"]
    job_id = ""
    job_status = ""

    def get_req_subvars(self):
        # The real one collects every req_* trait; username, homedir and keepvars are among them.
        subvars = {name[4:]: getattr(self, name) for name in self.trait_names() if name.startswith("req_")}
        subvars.update(username=self.req_username, homedir=self.req_homedir, keepvars=self.req_keepvars or ",".join(self.get_env()))
        return subvars

    def _command(self, template, subvars):
        return " ".join((format_template(self.exec_prefix, **subvars), format_template(template, **subvars)))

    def cmd_formatted_for_batch(self):
        """The {cmd} of the batch script: the wrapper, Spawner.cmd and Spawner.get_args(), joined by spaces."""
        return " ".join([self.batchspawner_singleuser_cmd] + self.cmd + self.get_args())

    async def run_command(self, cmd, input=None, env=None):
        proc = await asyncio.create_subprocess_shell(
            cmd, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate(input.encode() if input else None)
        if proc.returncode != 0:
            self.log.error("Subprocess returned exitcode %s", proc.returncode)
            self.log.error(err.decode().strip())
            raise RuntimeError(err.decode().strip())
        return out.decode().strip()

    def parse_job_id(self, output):
        job_id = output.splitlines()[-1].split(";")[0]
        int(job_id)
        return job_id

    async def submit_batch_script(self):
        subvars = self.get_req_subvars()
        cmd = self._command(self.batch_submit_cmd, subvars)
        subvars["cmd"] = self.cmd_formatted_for_batch()
        subvars.update(self.user_options)
        script = format_template(self.batch_script, **subvars)
        self.log.info("Spawner submitting job using " + cmd)
        out = await self.run_command(cmd, input=script, env=self.get_env())
        try:
            self.job_id = self.parse_job_id(out)
        except Exception:
            self.log.error("Job submission failed with exit code %s", out)
            self.job_id = ""
        return self.job_id

    async def query_job_status(self):
        if not self.job_id:
            self.job_status = ""
            return JobStatus.NOTFOUND
        subvars = self.get_req_subvars()
        subvars["job_id"] = self.job_id
        cmd = self._command(self.batch_query_cmd, subvars)
        try:
            self.job_status = await self.run_command(cmd)
        except RuntimeError as e:
            self.job_status = e.args[0]
        except Exception:
            self.job_status = ""
        return classify(self)

    async def cancel_batch_job(self):
        subvars = self.get_req_subvars()
        subvars["job_id"] = self.job_id
        cmd = self._command(self.batch_cancel_cmd, subvars)
        self.log.info("Cancelling job " + self.job_id + ": " + cmd)
        await self.run_command(cmd)

    def clear_state(self):
        self.job_id = ""
        self.job_status = ""

    def state_ispending(self):
        return self.job_status and re.search(self.state_pending_re, self.job_status)

    def state_isrunning(self):
        return self.job_status and re.search(self.state_running_re, self.job_status)

    def state_isunknown(self):
        if self.state_unknown_re:
            return self.job_status and re.search(self.state_unknown_re, self.job_status)

    def state_gethost(self):
        match = re.search(self.state_exechost_re, self.job_status)
        return match.groups()[0] if match else None

    async def poll(self):
        status = await self.query_job_status()
        if status in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.UNKNOWN):
            return None
        self.clear_state()
        return 1

    async def start(self):
        await self.submit_batch_script()
        if len(self.job_id) == 0:
            raise RuntimeError("Jupyter batch job submission failure (no jobid in output)")
        while True:
            status = await self.query_job_status()
            if status == JobStatus.RUNNING:
                return (self.state_gethost(), 12345)
            if status == JobStatus.NOTFOUND:
                self.clear_state()
                raise RuntimeError(
                    "The Jupyter batch job has disappeared while pending in the queue or died immediately after starting."
                )
            await asyncio.sleep(self.startup_poll_interval)

    async def stop(self, now=False):
        await self.cancel_batch_job()
        if now:
            return
        for _ in range(10):
            status = await self.query_job_status()
            if status not in (JobStatus.RUNNING, JobStatus.UNKNOWN):
                return
            await asyncio.sleep(0.1)


module("batchspawner", format_template=format_template, JobStatus=JobStatus, SlurmSpawner=SlurmSpawner)


# --- bricsauthenticator ----------------------------------------------------------------------


def make_options_form(projects):
    """bricsauthenticator's form: the project, a job duration of 1, 2, 4 or 8 h, 1 to 4 GPUs, free-text partition and reservation."""
    select = lambda name, options: f'<select name="{name}">' + "".join(f'<option value="{v}">{label}</option>' for v, label in options) + "</select>"  # noqa: E731
    return "\n".join(
        [
            select("brics_project", [(p, f"{p}: {d['name']}") for p, d in projects.items()]) if projects else '<select name="brics_project"><option value="" disabled>No projects available</option></select>',
            select("runtime", [("01:00:00", "1h"), ("02:00:00", "2h"), ("04:00:00", "4h"), ("08:00:00", "8h")]),
            select("ngpus", [(str(n), str(n)) for n in range(1, 5)]),
            '<input type="text" name="partition" value="">',
            '<input type="text" name="reservation" value="">',
        ]
    )


def interpret_form_data(form_data, valid_projects):
    """bricsauthenticator's validation: values checked by shape only (any HH:MM:SS, any one digit), then shell-quoted."""
    if not set(form_data) <= {"brics_project", "runtime", "ngpus", "partition", "reservation"}:
        raise ValueError("Invalid spawner options input: unknown form data keys")
    project = form_data["brics_project"][0]
    if not re.fullmatch(r"^[a-z][a-z0-9\-_]*\.[a-z][a-z0-9\-_]*$", project) or project not in valid_projects:
        raise ValueError("Invalid spawner options input: brics_project not valid")
    runtime = form_data["runtime"][0]
    if not re.fullmatch(r"\d\d:\d\d:\d\d", runtime) or int(runtime[:2]) > 23 or int(runtime[3:5]) > 59 or int(runtime[6:]) > 59:
        raise ValueError("Invalid spawner options input: runtime not valid")
    if not re.fullmatch(r"\d", form_data["ngpus"][0]):
        raise ValueError("Invalid spawner options input: ngpus not valid")
    options = {"brics_project": project, "runtime": runtime, "ngpus": form_data["ngpus"][0]}
    for key in ("partition", "reservation"):
        value = form_data.get(key, [""])[0]
        if value and not re.fullmatch(r"[a-zA-Z0-9\-_]*", value):
            raise ValueError(f"Invalid spawner options input: {key} not valid")
        options[key] = value or None
    return {k: (shlex.quote(v) if v is not None else None) for k, v in options.items()}


class BricsSlurmSpawner(SlurmSpawner):
    """bricsauthenticator's BricsSlurmSpawner: the job's account and home from auth_state and the form.
    Records the poll and stop calls JupyterHub makes (then does what the real one does), so tests
    can see their order."""

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

    @default("options_form")
    def _options_form_default(self):
        return lambda spawner: make_options_form(spawner.brics_projects)

    @default("options_from_form")
    def _options_from_form_default(self):
        def options_from_form(form_data, spawner):
            try:
                return interpret_form_data(form_data, set(spawner.brics_projects))
            except ValueError as e:
                raise HTTPError(500, str(e))

        return options_from_form


    async def poll(self):
        self.calls.append(("poll",))
        return await super().poll()

    async def stop(self, now=False):
        self.calls.append(("stop", now))
        return await super().stop(now=now)


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
