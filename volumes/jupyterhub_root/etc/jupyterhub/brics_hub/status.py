"""
What the running hub says about itself, for `brics-env status`: JupyterHub's version, how many
users it has and how many servers are running or starting.

Not imported by the hub. brics-env pipes this file's text into `python3 - SETTINGS_PY ORIGIN`
inside the hub container (so it matches the brics-env that asks, whatever is on the volume):
SETTINGS_PY is the hub module's settings.py, loaded on its own (the package would import
JupyterHub) to read the base URL and the brics-env service's token file exactly as the hub does;
ORIGIN is where the hub answers inside the container. The token is read here and sent only to
the hub: it never appears on a command line or leaves the container.

Prints one line of JSON: {"version": "5.2.1", "users": 3, "servers": {"running": 1, "pending": 0}},
or {"error": "..."} with exit status 1.
"""

import importlib.util
import json
import os
import sys
import urllib.error
import urllib.request

SERVICE = "brics-env"
PAGE = 200
TIMEOUT_S = 10
# JupyterHub pages the user list when asked for it with this media type.
PAGINATED = "application/jupyterhub-pagination+json"


class StatusError(Exception):
    pass


def load_module(path):
    spec = importlib.util.spec_from_file_location("brics_hub_settings", path)
    if spec is None or spec.loader is None:
        raise StatusError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def service_token(settings):
    service = next((s for s in getattr(settings, "services", ()) if s["name"] == SERVICE), None)
    if service is None:
        raise StatusError(
            f"the hub registers no {SERVICE} service: its module or manifest predates service tokens "
            "(update the volume's /etc/jupyterhub and play combined.yaml from this brics-env)"
        )
    try:
        with open(service["tokenFile"]) as f:
            token = f.read().strip()
    except OSError as e:
        raise StatusError(f"no token for the {SERVICE} service ({e.strerror}: {service['tokenFile']}); has the hub started?") from None
    if not token:
        raise StatusError(f"the {SERVICE} service's token file {service['tokenFile']} is empty")
    return token


def get_json(url, token=None, accept="application/json"):
    headers = {"Accept": accept}
    if token is not None:
        headers["Authorization"] = f"token {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        raise StatusError(f"{url} answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise StatusError(f"{url}: {getattr(e, 'reason', e)}") from None


def hub_status(settings, origin):
    api = f"{origin}{settings['baseUrl']}hub/api"
    token = service_token(settings)
    version = get_json(f"{api}/")["version"]
    users = get_json(f"{api}/users?limit=1", token, PAGINATED)["_pagination"]["total"]
    running = pending = 0
    offset = 0
    while True:
        page = get_json(f"{api}/users?state=active&limit={PAGE}&offset={offset}", token, PAGINATED)
        for user in page["items"]:
            for server in (user.get("servers") or {}).values():
                if server.get("ready"):
                    running += 1
                elif server.get("pending"):
                    pending += 1
        following = page["_pagination"].get("next")
        if not following:
            break
        offset = following["offset"]
    return {"version": version, "users": users, "servers": {"running": running, "pending": pending}}


def main(argv):
    if len(argv) != 3:
        print(json.dumps({"error": "usage: python3 - SETTINGS_PY ORIGIN"}))
        return 2
    try:
        settings = load_module(argv[1]).load_settings(os.environ)
        result = hub_status(settings, argv[2].rstrip("/"))
    except Exception as e:  # noqa: BLE001  (whatever went wrong is the answer, as one line)
        print(json.dumps({"error": str(e) or type(e).__name__}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
