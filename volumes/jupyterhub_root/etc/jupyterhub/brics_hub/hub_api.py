"""
What brics-env asks the running hub and has it do, through the Hub API with the token of the hub's
brics-env service: `brics-env status` (the hub's version, how many users it has and how many
servers are running or starting) and `brics-env down --stop-servers` (stop every user server, which
cancels its Slurm job, and wait until the hub reports none).

Not imported by the hub. brics-env pipes this file's text into `python3 - SETTINGS_PY ORIGIN
[ACTION [SECONDS]]` inside the hub container (so it matches the brics-env that asks, whatever is on
the volume): SETTINGS_PY is the hub module's settings.py, loaded on its own (the package would
import JupyterHub) to read the base URL and the brics-env service's token file exactly as the hub
does; ORIGIN is where the hub answers inside the container. The token is read here and sent only
to the hub: it never appears on a command line or leaves the container.

ACTION is one of
    status                  (the default) prints {"version": "5.2.1", "users": 3,
                            "servers": {"running": 1, "pending": 0}}
    stop-servers SECONDS    asks the hub to stop every running server (one still starting once it
                            has started), waits up to SECONDS until it lists none, and prints
                            {"stopped": [{"user": "alice", "server": ""}, ...]}
Prints one line of JSON, {"error": "..."} with exit status 1 when something failed (stop-servers
adds "left": the servers still there).
"""

import importlib.util
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SERVICE = "brics-env"
PAGE = 200
TIMEOUT_S = 10
# JupyterHub pages the user list when asked for it with this media type.
PAGINATED = "application/jupyterhub-pagination+json"
# Between looks at what is still running, while servers stop.
STOP_POLL_S = 1.0


class HubApiError(Exception):
    def __init__(self, message, left=None):
        super().__init__(message)
        self.left = left


def load_module(path):
    spec = importlib.util.spec_from_file_location("brics_hub_settings", path)
    if spec is None or spec.loader is None:
        raise HubApiError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def service_token(settings):
    service = next((s for s in getattr(settings, "services", ()) if s["name"] == SERVICE), None)
    if service is None:
        raise HubApiError(
            f"the hub registers no {SERVICE} service: its module or manifest predates service tokens "
            "(update the volume's /etc/jupyterhub and play combined.yaml from this brics-env)"
        )
    try:
        with open(service["tokenFile"]) as f:
            token = f.read().strip()
    except OSError as e:
        raise HubApiError(f"no token for the {SERVICE} service ({e.strerror}: {service['tokenFile']}); has the hub started?") from None
    if not token:
        raise HubApiError(f"the {SERVICE} service's token file {service['tokenFile']} is empty")
    return token


class Hub:
    def __init__(self, settings, origin):
        self.api = f"{origin}{settings['baseUrl']}hub/api"
        self.token = service_token(settings)

    def call(self, method, path, accept="application/json", auth=True):
        url = f"{self.api}{path}"
        headers = {"Accept": accept}
        if auth:
            headers["Authorization"] = f"token {self.token}"
        request = urllib.request.Request(url, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                body = response.read()
                return json.loads(body) if body else None
        except urllib.error.HTTPError as e:
            if e.code == 403 and method == "DELETE":
                raise HubApiError(
                    f"{method} {url} answered 403 {e.reason}: the hub's {SERVICE} service may not stop servers "
                    "(its role predates brics-env's 'servers' scope; 'brics-env up' applies the current manifest)"
                ) from None
            raise HubApiError(f"{url} answered {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            raise HubApiError(f"{url}: {getattr(e, 'reason', e)}") from None

    def active_users(self):
        """Users with a server running, starting or stopping, page by page."""
        offset = 0
        while True:
            page = self.call("GET", f"/users?state=active&limit={PAGE}&offset={offset}", PAGINATED)
            yield from page["items"]
            following = page["_pagination"].get("next")
            if not following:
                return
            offset = following["offset"]


def servers_of(hub):
    """[{"user", "server", "ready", "pending"}] of every active server."""
    return [
        {"user": user["name"], "server": name, "ready": bool(server.get("ready")), "pending": server.get("pending")}
        for user in hub.active_users()
        for name, server in sorted((user.get("servers") or {}).items())
    ]


def hub_status(hub):
    version = hub.call("GET", "/", auth=False)["version"]
    users = hub.call("GET", "/users?limit=1", PAGINATED)["_pagination"]["total"]
    servers = servers_of(hub)
    running = sum(1 for s in servers if s["ready"])
    pending = sum(1 for s in servers if not s["ready"] and s["pending"])
    return {"version": version, "users": users, "servers": {"running": running, "pending": pending}}


def server_path(user, server):
    name = urllib.parse.quote(user, safe="")
    return f"/users/{name}/server" if server == "" else f"/users/{name}/servers/{urllib.parse.quote(server, safe='')}"


def stop_servers(hub, timeout_s, clock=time.monotonic, sleep=time.sleep):
    """Stops every server through the hub (its spawner cancels the Slurm job) and waits until the
    hub lists none; returns those it stopped. The hub refuses to stop a server while it is still
    starting, so one that is starting is asked again once it has started (or failed to)."""
    deadline = clock() + timeout_s
    seen = {}
    asked = set()
    while True:
        left = servers_of(hub)
        for s in left:
            key = (s["user"], s["server"])
            seen.setdefault(key, {"user": s["user"], "server": s["server"]})
            if s["pending"] is None and key not in asked:
                hub.call("DELETE", server_path(*key))
                asked.add(key)
        if not left:
            return list(seen.values())
        if clock() >= deadline:
            names = ", ".join(s["user"] + (f"/{s['server']}" if s["server"] else "") for s in left)
            raise HubApiError(
                f"after {timeout_s} s the hub still lists servers: {names}",
                left=[{"user": s["user"], "server": s["server"], "pending": s["pending"]} for s in left],
            )
        sleep(STOP_POLL_S)


def main(argv):
    if len(argv) not in (3, 4, 5) or (len(argv) > 3 and argv[3] not in ("status", "stop-servers")):
        print(json.dumps({"error": "usage: python3 - SETTINGS_PY ORIGIN [status | stop-servers SECONDS]"}))
        return 2
    action = argv[3] if len(argv) > 3 else "status"
    try:
        settings = load_module(argv[1]).load_settings(os.environ)
        hub = Hub(settings, argv[2].rstrip("/"))
        if action == "status":
            result = hub_status(hub)
        else:
            result = {"stopped": stop_servers(hub, float(argv[4]) if len(argv) > 4 else 180.0)}
    except Exception as e:  # noqa: BLE001  (whatever went wrong is the answer, as one line)
        answer = {"error": str(e) or type(e).__name__}
        if isinstance(e, HubApiError) and e.left is not None:
            answer["left"] = e.left
        print(json.dumps(answer))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
