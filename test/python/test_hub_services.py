"""The services brics-env registers in the hub (tokens made once, 0600, roles with only their
scopes) and the status query `brics-env status` runs in the hub container, against a stand-in of
JupyterHub 5's REST API (version, users paged with the pagination media type, 403 without a token)."""

import json
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import CONFIG_DIR, env_for, with_token_dir

from brics_hub.services import service_token

STATUS_SCRIPT = CONFIG_DIR / "brics_hub" / "status.py"
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
    assert roles["brics-env"]["scopes"] == ["list:users", "read:users", "read:servers"]
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


# --- the status query -------------------------------------------------------------------------

USERS = [
    {"name": "alice", "servers": {"": {"ready": True, "pending": None}}},
    {"name": "bob", "servers": {"": {"ready": False, "pending": "spawn"}}},
    {"name": "carol", "servers": {}},
    {"name": "dave", "servers": {"": {"ready": True, "pending": None}}},
    {"name": "erin", "servers": {}},
]
PAGE_MAX = 2  # JupyterHub caps the page size (api_page_max_limit); small here so the query must page


class FakeHubApi(BaseHTTPRequestHandler):
    token = ""
    base = "/"
    seen = []

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        type(self).seen.append((url.path, self.headers.get("Authorization")))
        api = f"{self.base}hub/api"
        if url.path == f"{api}/":
            return self.reply(200, {"version": "5.2.1"})
        if url.path != f"{api}/users":
            return self.reply(404, {"message": "Not Found"})
        if self.headers.get("Authorization") != f"token {self.token}":
            return self.reply(403, {"status": 403, "message": "Missing or invalid credentials."})
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        users = [u for u in USERS if q.get("state") != "active" or u["servers"]]
        offset, limit = int(q.get("offset", 0)), min(int(q.get("limit", PAGE_MAX)), PAGE_MAX)
        items = users[offset : offset + limit]
        following = {"offset": offset + limit, "limit": limit, "url": "..."} if offset + limit < len(users) else None
        if self.headers.get("Accept") != "application/jupyterhub-pagination+json":
            return self.reply(200, items)
        self.reply(200, {"items": items, "_pagination": {"offset": offset, "limit": limit, "total": len(users), "next": following}})


@pytest.fixture
def fake_hub():
    FakeHubApi.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHubApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_status(environ, origin):
    """As brics-env runs it: the script's text on stdin of `python3 - settings.py origin`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOY_CONFIG_", "BRICS_ENV_"))} | environ
    r = subprocess.run(
        [sys.executable, "-", str(SETTINGS_PY), origin], input=STATUS_SCRIPT.read_text(), env=env, capture_output=True, text=True, timeout=60
    )
    return r.returncode, json.loads(r.stdout), r


@pytest.mark.parametrize("base", ["/", "/jupyter/"])
def test_status_counts_users_and_servers_asking_with_the_service_token(fake_hub, tmp_path, base):
    environ = with_token_dir(env_for("prod") | {"DEPLOY_CONFIG_BASE_URL": base.rstrip("/") or "/"}, tmp_path)
    token = service_token(str(tmp_path / "brics-env-service.token"))
    FakeHubApi.token, FakeHubApi.base = token, base
    code, out, r = run_status(environ, f"http://127.0.0.1:{fake_hub.server_port}")
    assert code == 0, r.stderr
    assert out == {"version": "5.2.1", "users": 5, "servers": {"running": 2, "pending": 1}}
    assert token not in r.stdout + r.stderr
    assert all(auth == f"token {token}" for path, auth in FakeHubApi.seen if path.endswith("/users"))


def test_status_says_why_when_the_token_is_refused(fake_hub, tmp_path):
    environ = with_token_dir(env_for("dev_dummyauth"), tmp_path)
    service_token(str(tmp_path / "brics-env-service.token"))
    FakeHubApi.token, FakeHubApi.base = "another-token", "/"
    code, out, _ = run_status(environ, f"http://127.0.0.1:{fake_hub.server_port}")
    assert code == 1
    assert out["error"].endswith("/hub/api/users?limit=1 answered 403 Forbidden")


def test_status_before_the_hub_made_its_token(tmp_path):
    code, out, _ = run_status(with_token_dir(env_for("prod"), tmp_path), "http://127.0.0.1:9")
    assert code == 1
    assert "no token for the brics-env service" in out["error"] and "has the hub started?" in out["error"]


def test_status_when_the_hub_does_not_answer(tmp_path):
    environ = with_token_dir(env_for("prod"), tmp_path)
    service_token(str(tmp_path / "brics-env-service.token"))
    code, out, _ = run_status(environ, "http://127.0.0.1:9")
    assert code == 1
    assert out["error"] == "http://127.0.0.1:9/jupyter/hub/api/: [Errno 111] Connection refused"


def test_status_with_settings_that_predate_services(tmp_path):
    environ = env_for("prod")
    data = json.loads(environ["BRICS_ENV_SETTINGS"])
    data["services"] = []
    code, out, _ = run_status(environ | {"BRICS_ENV_SETTINGS": json.dumps(data)}, "http://127.0.0.1:9")
    assert code == 1
    assert "registers no brics-env service" in out["error"]
