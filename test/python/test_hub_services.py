"""The services brics-env registers in the hub (tokens made once, 0600, roles with only their
scopes) and what brics-env asks the hub in its container (hub_api.py: the status query of
`brics-env status`, stopping every server for `brics-env down --stop-servers`), against a stand-in
of JupyterHub 5's REST API (version, users paged with the pagination media type, 403 without a
token, DELETE of a server that stops at once or after a while)."""

import copy

import json
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from conftest import CONFIG_DIR, env_for, with_token_dir

from brics_hub.services import service_token

HUB_API_SCRIPT = CONFIG_DIR / "brics_hub" / "hub_api.py"
SETTINGS_PY = CONFIG_DIR / "brics_hub" / "settings.py"


def services_of(config):
    return {s["name"]: s for s in config.JupyterHub.services}


def test_every_service_gets_a_token_file_made_once_and_readable_by_the_hub_only(loader, tmp_path):
    first = services_of(loader(env_for("prod"), token_dir=tmp_path))
    assert set(first) == {"brics-env", "prometheus"}
    for name, service in first.items():
        path = tmp_path / f"{name}-service.token"
        assert path.read_text().strip() == service["api_token"]
        assert len(service["api_token"]) == 64
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = services_of(loader(env_for("prod"), token_dir=tmp_path))
    assert {n: s["api_token"] for n, s in again.items()} == {n: s["api_token"] for n, s in first.items()}, "kept across restarts"
    assert first["brics-env"]["api_token"] != first["prometheus"]["api_token"]


def test_each_service_has_a_role_with_only_its_scopes(loader):
    roles = {r["name"]: r for r in loader(env_for("dev_dummyauth")).JupyterHub.load_roles}
    assert roles["prometheus"]["scopes"] == ["read:metrics"]
    assert roles["prometheus"]["services"] == ["prometheus"]
    assert roles["brics-env"]["scopes"] == ["list:users", "read:users", "read:servers", "servers"]
    assert roles["brics-env"]["services"] == ["brics-env"]


def test_metrics_need_a_token(loader):
    assert loader(env_for("prod")).JupyterHub.authenticate_prometheus is True


def test_an_empty_token_file_gets_a_token_and_a_loose_mode_is_fixed(tmp_path):
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    assert len(service_token(str(empty))) == 64
    loose = tmp_path / "loose.token"
    loose.write_text("abc\n")
    loose.chmod(0o644)
    assert service_token(str(loose)) == "abc"
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


# --- the Hub API as brics-env asks it ------------------------------------------------------------

USERS = [
    {"name": "alice", "servers": {"": {"ready": True, "pending": None}}},
    {"name": "bob", "servers": {"": {"ready": False, "pending": "spawn"}}},
    {"name": "carol", "servers": {}},
    {"name": "dave", "servers": {"": {"ready": True, "pending": None}, "gpu": {"ready": True, "pending": None}}},
    {"name": "erin", "servers": {}},
]
PAGE_MAX = 2  # JupyterHub caps the page size (api_page_max_limit); small here so the query must page


class FakeHubApi(BaseHTTPRequestHandler):
    token = ""
    base = "/"
    seen = []
    users = []
    # How many looks at the user list a server in "stop" takes to go (JupyterHub answers 202 while its spawner stops).
    stop_after = 0
    # None, or a status every DELETE is answered with (403: a role without the servers scope).
    delete_status = None
    stopping = {}
    # How many looks at the user list a server in "spawn" takes to be ready.
    starting = {}

    def log_message(self, *args):
        pass

    def reply(self, code, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorised(self):
        return self.headers.get("Authorization") == f"token {self.token}"

    def do_GET(self):
        url = urlparse(self.path)
        cls = type(self)
        cls.seen.append(("GET", url.path, self.headers.get("Authorization")))
        api = f"{self.base}hub/api"
        if url.path == f"{api}/":
            return self.reply(200, {"version": "5.2.1"})
        if url.path != f"{api}/users":
            return self.reply(404, {"message": "Not Found"})
        if not self.authorised():
            return self.reply(403, {"status": 403, "message": "Missing or invalid credentials."})
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if q.get("state") == "active" and q.get("offset", "0") == "0":
            # A new look at the list: starting servers come closer to started, stopping ones to stopped.
            for key in list(cls.starting):
                cls.starting[key] -= 1
                if cls.starting[key] < 0:
                    user, server = key
                    next(u for u in cls.users if u["name"] == user)["servers"][server] = {"ready": True, "pending": None}
                    del cls.starting[key]
            for key in list(cls.stopping):
                cls.stopping[key] -= 1
                if cls.stopping[key] < 0:
                    user, server = key
                    del next(u for u in cls.users if u["name"] == user)["servers"][server]
                    del cls.stopping[key]
        users = [u for u in cls.users if q.get("state") != "active" or u["servers"]]
        offset, limit = int(q.get("offset", 0)), min(int(q.get("limit", PAGE_MAX)), PAGE_MAX)
        items = users[offset : offset + limit]
        following = {"offset": offset + limit, "limit": limit, "url": "..."} if offset + limit < len(users) else None
        if self.headers.get("Accept") != "application/jupyterhub-pagination+json":
            return self.reply(200, items)
        self.reply(200, {"items": items, "_pagination": {"offset": offset, "limit": limit, "total": len(users), "next": following}})

    def do_DELETE(self):
        url = urlparse(self.path)
        cls = type(self)
        cls.seen.append(("DELETE", url.path, self.headers.get("Authorization")))
        if not self.authorised():
            return self.reply(403, {"status": 403, "message": "Missing or invalid credentials."})
        if cls.delete_status is not None:
            return self.reply(cls.delete_status, {"status": cls.delete_status, "message": "Action is not authorized"})
        prefix = f"{self.base}hub/api/users/"
        rest = unquote(url.path[len(prefix) :]) if url.path.startswith(prefix) else ""
        user, _, what = rest.partition("/")
        server = "" if what == "server" else what.removeprefix("servers/")
        record = next((u for u in cls.users if u["name"] == user), None)
        if record is None or server not in record["servers"]:
            return self.reply(400, {"message": f"{user} is not running"})
        pending = record["servers"][server]["pending"]
        if pending == "spawn":
            # JupyterHub's answer to stopping a server that is still starting.
            return self.reply(400, {"message": f"{user} is pending spawn, please wait"})
        if cls.stop_after == 0:
            del record["servers"][server]
            return self.reply(204)
        record["servers"][server] = {"ready": False, "pending": "stop"}
        cls.stopping[(user, server)] = cls.stop_after
        self.reply(202)


@pytest.fixture
def fake_hub():
    FakeHubApi.seen = []
    FakeHubApi.users = copy.deepcopy(USERS)
    FakeHubApi.stop_after = 0
    FakeHubApi.delete_status = None
    FakeHubApi.stopping = {}
    FakeHubApi.starting = {("bob", ""): 2}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHubApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_hub_api(environ, origin, *action):
    """As brics-env runs it: the script's text on stdin of `python3 - settings.py origin [action ...]`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOY_CONFIG_", "BRICS_ENV_"))} | environ
    r = subprocess.run(
        [sys.executable, "-", str(SETTINGS_PY), origin, *action],
        input=HUB_API_SCRIPT.read_text(),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return r.returncode, json.loads(r.stdout), r


def serving(tmp_path, fake_hub, name="prod", base="/jupyter/"):
    """The environment of `name`'s hub container with its token files in tmp_path, the fake hub
    answering under `base` to the brics-env service's token, and the origin to ask."""
    environ = with_token_dir(env_for(name) | {"DEPLOY_CONFIG_BASE_URL": base.rstrip("/") or "/"}, tmp_path)
    FakeHubApi.token, FakeHubApi.base = service_token(str(tmp_path / "brics-env-service.token")), base
    return environ, f"http://127.0.0.1:{fake_hub.server_port}"


@pytest.mark.parametrize("base", ["/", "/jupyter/"])
def test_status_counts_users_and_servers_asking_with_the_service_token(fake_hub, tmp_path, base):
    environ, origin = serving(tmp_path, fake_hub, base=base)
    code, out, r = run_hub_api(environ, origin)
    assert code == 0, r.stderr
    assert out == {"version": "5.2.1", "users": 5, "servers": {"running": 3, "pending": 1}}
    assert FakeHubApi.token not in r.stdout + r.stderr
    assert all(auth == f"token {FakeHubApi.token}" for _, path, auth in FakeHubApi.seen if path.endswith("/users"))
    assert run_hub_api(environ, origin, "status")[1] == out


def test_status_says_why_when_the_token_is_refused(fake_hub, tmp_path):
    environ, origin = serving(tmp_path, fake_hub, "dev_dummyauth", "/")
    FakeHubApi.token = "another-token"
    code, out, _ = run_hub_api(environ, origin)
    assert code == 1
    assert out["error"].endswith("/hub/api/users?limit=1 answered 403 Forbidden")


def test_status_before_the_hub_made_its_token(tmp_path):
    code, out, _ = run_hub_api(with_token_dir(env_for("prod"), tmp_path), "http://127.0.0.1:9")
    assert code == 1
    assert "no token for the brics-env service" in out["error"] and "has the hub started?" in out["error"]


def test_status_when_the_hub_does_not_answer(tmp_path):
    environ = with_token_dir(env_for("prod"), tmp_path)
    service_token(str(tmp_path / "brics-env-service.token"))
    code, out, _ = run_hub_api(environ, "http://127.0.0.1:9")
    assert code == 1
    assert out["error"] == "http://127.0.0.1:9/jupyter/hub/api/: [Errno 111] Connection refused"


def test_status_with_settings_that_predate_services(tmp_path):
    environ = env_for("prod")
    data = json.loads(environ["BRICS_ENV_SETTINGS"])
    data["services"] = []
    code, out, _ = run_hub_api(environ | {"BRICS_ENV_SETTINGS": json.dumps(data)}, "http://127.0.0.1:9")
    assert code == 1
    assert "registers no brics-env service" in out["error"]


@pytest.mark.parametrize("stop_after", [0, 2])
def test_stop_servers_stops_every_server_of_every_user_and_waits_until_none_is_listed(fake_hub, tmp_path, stop_after):
    environ, origin = serving(tmp_path, fake_hub)
    FakeHubApi.stop_after = stop_after
    code, out, r = run_hub_api(environ, origin, "stop-servers", "30")
    assert code == 0, r.stdout + r.stderr
    assert out == {
        "stopped": [{"user": "alice", "server": ""}, {"user": "bob", "server": ""}, {"user": "dave", "server": ""}, {"user": "dave", "server": "gpu"}]
    }
    assert [u for u in FakeHubApi.users if u["servers"]] == []
    deletes = [path for method, path, _ in FakeHubApi.seen if method == "DELETE"]
    assert len(deletes) == len(set(deletes)), f"each server asked once: {deletes}"
    deleted = sorted(deletes)
    assert deleted == [
        "/jupyter/hub/api/users/alice/server",
        "/jupyter/hub/api/users/bob/server",
        "/jupyter/hub/api/users/dave/server",
        "/jupyter/hub/api/users/dave/servers/gpu",
    ]
    assert all(auth == f"token {FakeHubApi.token}" for method, _, auth in FakeHubApi.seen if method == "DELETE")
    assert FakeHubApi.token not in r.stdout + r.stderr


def test_stop_servers_with_nothing_running_stops_nothing(fake_hub, tmp_path):
    environ, origin = serving(tmp_path, fake_hub)
    FakeHubApi.users = [{"name": "carol", "servers": {}}]
    assert run_hub_api(environ, origin, "stop-servers", "5")[:2] == (0, {"stopped": []})
    assert not [m for m, _, _ in FakeHubApi.seen if m == "DELETE"]


def test_stop_servers_says_which_are_left_when_they_do_not_stop_in_time(fake_hub, tmp_path):
    environ, origin = serving(tmp_path, fake_hub)
    FakeHubApi.stop_after = 10_000
    code, out, _ = run_hub_api(environ, origin, "stop-servers", "1")
    assert code == 1
    assert out["error"] == "after 1.0 s the hub still lists servers: alice, bob, dave, dave/gpu"
    assert out["left"][0] == {"user": "alice", "server": "", "pending": "stop"}
    # bob was still starting when the time was up: never asked to stop, as JupyterHub would refuse.
    assert out["left"][1] == {"user": "bob", "server": "", "pending": "spawn"}


def test_stop_servers_with_a_role_that_may_not_stop_them_says_so(fake_hub, tmp_path):
    environ, origin = serving(tmp_path, fake_hub)
    FakeHubApi.delete_status = 403
    code, out, _ = run_hub_api(environ, origin, "stop-servers", "5")
    assert code == 1
    assert "the hub's brics-env service may not stop servers" in out["error"]
    assert "'brics-env up' applies the current manifest" in out["error"]


def test_an_unknown_action_is_a_usage_error(tmp_path):
    code, out, _ = run_hub_api(with_token_dir(env_for("prod"), tmp_path), "http://127.0.0.1:9", "restart")
    assert code == 2 and out["error"].startswith("usage:")
