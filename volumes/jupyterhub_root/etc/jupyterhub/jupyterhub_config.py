"""
JupyterHub configuration shared by every brics-env environment.

The pod tells this file what kind of environment it is in (set by the manifest, not by users):

    BRICS_ENV_AUTH   dummy | jwt        shared-password login mocking BricsAuthenticator, or the real one
    BRICS_ENV_SLURM  pod | external     Slurm in a container of the same pod, or a real cluster

Everything deployment-specific comes from the deploy ConfigMap as DEPLOY_CONFIG_* variables (see
DEPLOY_CONFIG_KEYS below). All missing or malformed values are reported together, before anything
is configured, so the hub fails to start with one message that names them.

Slurm is driven over ssh: every batchspawner command runs as
    ssh ... jupyterspawner@<sshHostname> sudo -u <USER>.<PROJECT> <slurmspawner_wrappers script>
and the jupyterspawner account's sudo policy allows exactly those three scripts.
"""

import hmac
import os
import re
import urllib.parse

import batchspawner  # noqa: F401  (importing it registers batchspawner's Hub API handler)
from jupyterhub.auth import Authenticator
from traitlets import List, Unicode, default

c = get_config()  # noqa: F821  (provided by JupyterHub's config loader)

SRV_DIR = "/srv/jupyterhub"
SSH_KEY_FILE = f"{SRV_DIR}/ssh_key"
SSH_USER = "jupyterspawner"
SSH_CONNECT_TIMEOUT_S = 20
DUMMY_PORTAL = "brics"

# Printed by the query command when ssh itself fails (exit 255): see batch_query_cmd below.
SSH_FAILED_MARKER = "BRICS_SLURM_HOST_UNREACHABLE"

# env var -> deploy ConfigMap key (for messages that point at what the user edits)
DEPLOY_CONFIG_KEYS = {
    "DEPLOY_CONFIG_LOG_LEVEL": "logLevel",
    "DEPLOY_CONFIG_BASE_URL": "baseUrl",
    "DEPLOY_CONFIG_DEV_USERS": "devUsers",
    "DEPLOY_CONFIG_DUMMYAUTH_PASSWORD": "dummyAuthPassword",
    "DEPLOY_CONFIG_SSH_HOSTNAME": "sshHostname",
    "DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN": "slurmSpawnerWrappersBin",
    "DEPLOY_CONFIG_CONDA_PREFIX_DIR": "condaPrefixDir",
    "DEPLOY_CONFIG_JUPYTER_DATA_DIR": "jupyterDataDir",
    "DEPLOY_CONFIG_HUB_CONNECT_URL": "hubConnectUrl",
    "DEPLOY_CONFIG_OIDC_SERVER": "oidcServer",
    "DEPLOY_CONFIG_BRICS_PLATFORM": "bricsPlatform",
    "DEPLOY_CONFIG_JWT_AUDIENCE": "jwtAudience",
    "DEPLOY_CONFIG_POLL_INTERVAL": "pollInterval",
    "DEPLOY_CONFIG_STARTUP_POLL_INTERVAL": "startupPollInterval",
}

REQUIRED_ALWAYS = [
    "DEPLOY_CONFIG_BASE_URL",
    "DEPLOY_CONFIG_SSH_HOSTNAME",
    "DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN",
    "DEPLOY_CONFIG_CONDA_PREFIX_DIR",
    "DEPLOY_CONFIG_JUPYTER_DATA_DIR",
    "DEPLOY_CONFIG_HUB_CONNECT_URL",
]
REQUIRED_FOR_AUTH = {
    "dummy": ["DEPLOY_CONFIG_DEV_USERS", "DEPLOY_CONFIG_DUMMYAUTH_PASSWORD"],
    "jwt": ["DEPLOY_CONFIG_OIDC_SERVER", "DEPLOY_CONFIG_BRICS_PLATFORM", "DEPLOY_CONFIG_JWT_AUDIENCE"],
}
SLURM_PLACEMENTS = ("pod", "external")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# These values end up inside shell commands (ssh destination, script paths), so they are held to
# characters that need no quoting.
HOSTNAME_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?)$")
SAFE_ABS_PATH_RE = re.compile(r"^/[A-Za-z0-9._/+-]*$")
BASE_URL_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
# <USER>.<PROJECT>, lower case and starting with a letter, as BricsSlurmSpawner requires.
DEV_USER_RE = re.compile(r"^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*$")


def normalise_base_url(v):
    """Adds a missing leading or trailing '/', as JupyterHub does to its base_url."""
    return ("" if v.startswith("/") else "/") + v + ("" if v.endswith("/") else "/")


class DeployConfigError(RuntimeError):
    """The pod's environment does not describe a usable deployment."""


def _describe(var):
    key = DEPLOY_CONFIG_KEYS.get(var)
    return f"{var} (deploy-config key '{key}')" if key else var


def read_settings(environ):
    """Check the environment and return the settings this file needs; raise one error listing every problem."""
    problems = []
    auth = environ.get("BRICS_ENV_AUTH", "")
    slurm = environ.get("BRICS_ENV_SLURM", "")
    if auth not in REQUIRED_FOR_AUTH:
        problems.append(f"BRICS_ENV_AUTH must be one of {', '.join(REQUIRED_FOR_AUTH)} (got {auth!r}); the manifest sets it")
    if slurm not in SLURM_PLACEMENTS:
        problems.append(f"BRICS_ENV_SLURM must be one of {', '.join(SLURM_PLACEMENTS)} (got {slurm!r}); the manifest sets it")

    required = REQUIRED_ALWAYS + REQUIRED_FOR_AUTH.get(auth, [])
    missing = [var for var in required if not environ.get(var, "").strip()]
    if missing:
        problems.append("missing environment variables: " + ", ".join(_describe(v) for v in missing))

    def value(var):
        return environ.get(var, "").strip()

    def check(var, ok, expected):
        v = value(var)
        if v and not ok(v):
            problems.append(f"{_describe(var)} = {v!r}: expected {expected}")

    check("DEPLOY_CONFIG_LOG_LEVEL", lambda v: v.upper() in LOG_LEVELS, "one of " + ", ".join(LOG_LEVELS))
    check("DEPLOY_CONFIG_BASE_URL", lambda v: BASE_URL_RE.match(normalise_base_url(v)), "a URL path, e.g. '/' or '/jupyter/'")
    check("DEPLOY_CONFIG_SSH_HOSTNAME", HOSTNAME_RE.match, "a host name or IP address")
    for var in ("DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN", "DEPLOY_CONFIG_CONDA_PREFIX_DIR", "DEPLOY_CONFIG_JUPYTER_DATA_DIR"):
        check(var, SAFE_ABS_PATH_RE.match, "an absolute path of letters, digits and . _ / + -")
    check("DEPLOY_CONFIG_HUB_CONNECT_URL", lambda v: re.match(r"^https?://[^\s/]+", v), "an http(s) URL, e.g. http://host:8081")

    # Spawner.poll_interval is an Integer trait, batchspawner's startup_poll_interval a Float.
    poll = {}
    for var, fallback, kind, expected in (
        ("DEPLOY_CONFIG_POLL_INTERVAL", 60, int, "a positive whole number of seconds"),
        ("DEPLOY_CONFIG_STARTUP_POLL_INTERVAL", 15.0, float, "a positive number of seconds"),
    ):
        raw = value(var)
        try:
            poll[var] = kind(raw) if raw else fallback
            if poll[var] <= 0:
                raise ValueError
        except ValueError:
            problems.append(f"{_describe(var)} = {raw!r}: expected {expected}")

    dev_users = value("DEPLOY_CONFIG_DEV_USERS").split()
    if auth == "dummy":
        bad = [u for u in dev_users if not DEV_USER_RE.match(u)]
        if bad:
            problems.append(
                f"{_describe('DEPLOY_CONFIG_DEV_USERS')}: invalid names {', '.join(bad)}: expected "
                "<USER>.<PROJECT> in lower case, each part starting with a letter"
            )

    if problems:
        raise DeployConfigError(
            "jupyterhub_config.py: the deployment configuration is incomplete or invalid:\n  - "
            + "\n  - ".join(problems)
        )

    return {
        "auth": auth,
        "slurm": slurm,
        "log_level": value("DEPLOY_CONFIG_LOG_LEVEL").upper() or "INFO",
        "base_url": normalise_base_url(value("DEPLOY_CONFIG_BASE_URL")),
        "dev_users": dev_users,
        "dummy_password": environ.get("DEPLOY_CONFIG_DUMMYAUTH_PASSWORD", ""),
        "ssh_hostname": value("DEPLOY_CONFIG_SSH_HOSTNAME"),
        "wrappers_bin": value("DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN").rstrip("/") or "/",
        "conda_prefix_dir": value("DEPLOY_CONFIG_CONDA_PREFIX_DIR"),
        "jupyter_data_dir": value("DEPLOY_CONFIG_JUPYTER_DATA_DIR"),
        "hub_connect_url": value("DEPLOY_CONFIG_HUB_CONNECT_URL"),
        "oidc_server": value("DEPLOY_CONFIG_OIDC_SERVER"),
        "brics_platform": value("DEPLOY_CONFIG_BRICS_PLATFORM"),
        "jwt_audience": value("DEPLOY_CONFIG_JWT_AUDIENCE"),
        "poll_interval": poll.get("DEPLOY_CONFIG_POLL_INTERVAL", 60),
        "startup_poll_interval": poll.get("DEPLOY_CONFIG_STARTUP_POLL_INTERVAL", 15.0),
    }


# ---------------------------------------------------------------------------------------------
# Dummy authentication (BRICS_ENV_AUTH=dummy)


def dummy_auth_state(dev_users, user, portal=DUMMY_PORTAL):
    """auth_state in the shape BricsAuthenticator hands to BricsSlurmSpawner, for every devUsers
    entry <user>.<PROJECT>: {"<PROJECT>.<portal>": {"name": ..., "username": "<user>.<PROJECT>"}}."""
    state = {}
    for unix_name in dev_users:
        name, _, project = unix_name.partition(".")
        if name == user and project:
            state[f"{project}.{portal}"] = {"name": f"Dev project {project}", "username": unix_name}
    return state


class DummyBricsAuthenticator(Authenticator):
    """Login form with one shared password that always logs in the first devUsers user.

    Mocks BricsAuthenticator for environments without JWTs: the username typed in the form is
    ignored, and the auth_state has the shape BricsAuthenticator produces. Written on the base
    Authenticator (not SharedPasswordAuthenticator, which JupyterHub < 5.3 lacks).
    """

    shared_password = Unicode("", help="The password the login form must be given.").tag(config=True)
    dev_users = List(Unicode(), help="<USER>.<PROJECT> names; the first <USER> is logged in.").tag(config=True)
    portal = Unicode(DUMMY_PORTAL, help="Portal short name in auth_state keys.").tag(config=True)

    @default("allow_all")
    def _allow_all_default(self):
        # Only one fixed user can ever authenticate, so there is nothing further to restrict.
        return True

    async def authenticate(self, handler, data):
        supplied = str((data or {}).get("password", ""))
        # Constant-time comparison; an unset password never matches.
        if not self.shared_password or not hmac.compare_digest(
            supplied.encode("utf-8"), self.shared_password.encode("utf-8")
        ):
            self.log.warning("Dummy authentication failed: wrong password")
            return None
        if not self.dev_users:
            self.log.error("Dummy authentication: no devUsers configured")
            return None
        user = self.dev_users[0].partition(".")[0]
        return {"name": user, "auth_state": dummy_auth_state(self.dev_users, user, self.portal)}


# ---------------------------------------------------------------------------------------------
# Slurm over ssh


def ssh_exec_prefix(hostname):
    """batchspawner prepends this to every command; {{username}} is the job's <USER>.<PROJECT>.

    Jinja form ({{ }}) so it renders the same whether batchspawner formats it alone or joined with a
    command that itself uses Jinja. BatchMode: never prompt; StrictHostKeyChecking: only the host key
    from the Secret (/etc/ssh/ssh_known_hosts) is trusted.
    """
    return " ".join(
        [
            "ssh",
            f"-i {SSH_KEY_FILE}",
            "-o BatchMode=yes",
            "-o StrictHostKeyChecking=yes",
            f"-o ConnectTimeout={SSH_CONNECT_TIMEOUT_S}",
            f"{SSH_USER}@{hostname}",
            "sudo -u {{username}}",
        ]
    )


# Each keepvar crosses two shells: the hub's local `sh -c` (which runs ssh) and, after ssh has
# joined its arguments with spaces, the remote login shell (`bash -c`). ssh does not carry the
# environment, so each variable is passed as a VAR=value argument of sudo (allowed by env_keep).
#
# Locally, "$VAR" expands to the value, which sed turns into one single-quoted word for the remote
# shell ( ' -> '\'' ); the surrounding double quotes keep it one argument locally. The remote shell
# then removes exactly that quoting, so spaces, quotes, $, backslashes and newlines arrive intact.
# (Trailing newlines of a value are lost to command substitution.)
KEEPVAR_ARG_TEMPLATE = r""""{{var}}=$(printf '%s' "${{var}}" | sed "s/'/'\\\\''/g;1s/^/'/;\$s/\$/'/")" """


def batch_submit_cmd(wrappers_bin):
    return (
        "{% for var in keepvars.split(',') if var %}" + KEEPVAR_ARG_TEMPLATE + "{% endfor %}"
        f"{wrappers_bin}/slurmspawner_sbatch"
    )


# slurmspawner_squeue/scancel take the job id from SLURMSPAWNER_JOB_ID (a number from sbatch).
#
# batchspawner (>= 1.3) reads a failed query's stderr as the job status and classifies it:
# state_running_re / state_pending_re -> job alive, state_unknown_re -> "unknown" (poll() keeps the
# server, start() keeps waiting), anything else -> "not found" (the server is dropped as dead).
# A dropped ssh connection must not kill a user's session, so when ssh itself fails (exit status
# 255, which neither sudo nor the wrappers use) the command adds a marker line to stderr that
# state_unknown_re matches, and keeps the exit status. A real "job not found" (squeue prints
# nothing, or `slurm_load_jobs error: Invalid job id specified`) still reads as gone.
def batch_query_cmd(wrappers_bin):
    return (
        f"SLURMSPAWNER_JOB_ID={{{{job_id}}}} {wrappers_bin}/slurmspawner_squeue"
        ' || { rc=$?; if [ "$rc" -eq 255 ]; then'
        f' echo "{SSH_FAILED_MARKER}: ssh to the Slurm host failed (exit status 255)" >&2;'
        ' fi; exit "$rc"; }'
    )


def batch_cancel_cmd(wrappers_bin):
    return f"SLURMSPAWNER_JOB_ID={{{{job_id}}}} {wrappers_bin}/slurmspawner_scancel"


# SlurmSpawner's own unknown states (controller not answering) plus the ssh failure marker; (?m)
# because ssh's own error message comes first on stderr.
STATE_UNKNOWN_RE = (
    r"(?m)^(?:slurm_load_jobs error: (?:Socket timed out on send/recv|Unable to contact slurm controller)"
    rf"|{SSH_FAILED_MARKER}\b)"
)


def batch_script(slurm):
    """The job script. The pod's single-node Slurm has no GPUs, so --gpus is production-only.

    Note: an --export list without ALL makes Slurm load the user's login environment on the node
    (as --get-user-env does), which Slurm 24.11's slurmd does in a new namespace: a containerised
    Slurm on 24.11 needs CAP_SYS_ADMIN for any job spawned here.
    """
    external = slurm == "external"
    body = (
        "#!/bin/bash\n"
        "#SBATCH --output={{homedir}}/jupyterhub_slurmspawner_%j.log\n"
        "#SBATCH --job-name=spawner-jupyterhub\n"
        "#SBATCH --chdir={{homedir}}\n"
        "#SBATCH --export={{keepvars}}\n"
        "#SBATCH --get-user-env\n"
        "{% if partition %}#SBATCH --partition={{partition}}\n{% endif %}"
        "{% if runtime %}#SBATCH --time={{runtime}}\n{% endif %}"
        "{% if memory %}#SBATCH --mem={{memory}}\n{% endif %}"
        "{% if gres %}#SBATCH --gres={{gres}}\n{% endif %}"
    )
    if external:
        body += "{% if ngpus %}#SBATCH --gpus={{ngpus}}\n{% endif %}"
    body += (
        "{% if nprocs %}#SBATCH --cpus-per-task={{nprocs}}\n{% endif %}"
        "{% if reservation %}#SBATCH --reservation={{reservation}}\n{% endif %}"
        "{% if options %}#SBATCH {{options}}\n{% endif %}"
    )
    body += """
set -euo pipefail

source "${JUPYTERHUB_BRICS_CONDA_PREFIX_DIR}/bin/activate" jupyter-user-env
export JUPYTER_PATH="${JUPYTERHUB_BRICS_JUPYTER_DATA_DIR}${JUPYTER_PATH:+:${JUPYTER_PATH}}"

trap 'echo SIGTERM received' TERM
{{prologue}}
{% if srun %}{{srun}} {% endif %}{{cmd}}
echo "jupyterhub-singleuser ended gracefully"
{{epilogue}}
"""
    return body


def reconnecting_spawner_class(base):
    """`base` (BricsSlurmSpawner) learns the job's Unix account from auth_state, which JupyterHub
    hands it through auth_state_hook only when the user spawns. After a hub restart JupyterHub
    polls the servers it restored before that: the spawner cannot name the account, the poll
    fails, and the hub forgets a job that is still running (what cleanup_servers = False is
    meant to keep). So run the hook from the persisted auth_state before the first poll or stop."""

    class ReconnectingBricsSlurmSpawner(base):
        _auth_state_hook_ran = False

        async def run_auth_state_hook(self, auth_state):
            await super().run_auth_state_hook(auth_state)
            self._auth_state_hook_ran = True

        async def _restore_auth_state(self):
            if not self._auth_state_hook_ran:
                await self.run_auth_state_hook(await self.user.get_auth_state())

        async def poll(self):
            await self._restore_auth_state()
            return await super().poll()

        async def stop(self, now=False):
            await self._restore_auth_state()
            return await super().stop(now=now)

    return ReconnectingBricsSlurmSpawner


def brics_spawner_class():
    """BricsSlurmSpawner through its published entry point (the name `brics` in
    jupyterhub.spawners), so the config does not depend on the package's module layout."""
    from importlib.metadata import entry_points

    found = entry_points(group="jupyterhub.spawners", name="brics")
    if not found:
        raise SystemExit("jupyterhub_config.py: no JupyterHub spawner named 'brics'; is bricsauthenticator installed?")
    return next(iter(found)).load()


def logout_redirect_url(base_url):
    """Zenith's OAuth2 proxy sign-out, then back to the service; no '//' when baseUrl is '/'."""
    prefix = base_url.rstrip("/")
    return f"{prefix}/_oidc/sign_out?rd={urllib.parse.quote(prefix + '/', safe='')}"


# ---------------------------------------------------------------------------------------------
# Apply

settings = read_settings(os.environ)

c.Application.log_level = settings["log_level"]

c.JupyterHub.bind_url = f"http://:8000{settings['base_url']}"
# Spawned servers run elsewhere (another container, other hosts) and call back to the Hub API.
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.db_url = f"sqlite:///{SRV_DIR}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{SRV_DIR}/jupyterhub_cookie_secret"
# The signed cookie value expires after 12 h.
c.JupyterHub.cookie_max_age_days = 0.5
# Servers are batch jobs: let them outlive a hub restart.
c.JupyterHub.cleanup_servers = False

# auth_state carries the projects to the spawner; JUPYTERHUB_CRYPT_KEY is set by start-jupyterhub.
c.Authenticator.enable_auth_state = True

if settings["auth"] == "dummy":
    c.JupyterHub.authenticator_class = DummyBricsAuthenticator
    c.DummyBricsAuthenticator.shared_password = settings["dummy_password"]
    c.DummyBricsAuthenticator.dev_users = settings["dev_users"]
else:
    c.JupyterHub.authenticator_class = "brics"
    c.BricsAuthenticator.oidc_server = settings["oidc_server"]
    c.BricsAuthenticator.brics_platform = settings["brics_platform"]
    c.BricsAuthenticator.jwt_audience = settings["jwt_audience"]
    c.BricsAuthenticator.jwt_leeway = 5
    c.BricsAuthenticator.invalid_jwt_logout = True
    c.BricsAuthenticator.logout_redirect_url = logout_redirect_url(settings["base_url"])

c.JupyterHub.spawner_class = reconnecting_spawner_class(brics_spawner_class())
spawner = c.BricsSlurmSpawner
spawner.hub_connect_url = settings["hub_connect_url"]
# Only what the job needs crosses to Slurm (keepvars); the hub's PATH etc. mean nothing there.
spawner.env_keep = []
# JUPYTERHUB_* so that the sudo policy's env_keep lets them through to sbatch.
spawner.environment = {
    "JUPYTERHUB_BRICS_CONDA_PREFIX_DIR": settings["conda_prefix_dir"],
    "JUPYTERHUB_BRICS_JUPYTER_DATA_DIR": settings["jupyter_data_dir"],
}
spawner.notebook_dir = "~/"
spawner.start_timeout = 420
spawner.poll_interval = settings["poll_interval"]
spawner.startup_poll_interval = settings["startup_poll_interval"]
# srun would otherwise pass on only sbatch's --export list; ALL keeps what the batch script set up.
spawner.req_srun = "srun --export=ALL"
spawner.req_options = "--nodes=1"
spawner.batch_script = batch_script(settings["slurm"])
spawner.exec_prefix = ssh_exec_prefix(settings["ssh_hostname"])
spawner.batch_submit_cmd = batch_submit_cmd(settings["wrappers_bin"])
spawner.batch_query_cmd = batch_query_cmd(settings["wrappers_bin"])
spawner.batch_cancel_cmd = batch_cancel_cmd(settings["wrappers_bin"])
spawner.state_unknown_re = STATE_UNKNOWN_RE
