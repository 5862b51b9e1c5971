"""
JupyterHub services brics-env registers (declared in src/plan/hubServices.ts, handed over in
BRICS_ENV_SETTINGS): each gets a role of its own with only its scopes, and an API token kept in a
file of the hub's data directory. The token is made on the hub's first start, readable by its
owner only, and kept, so `brics-env status` and a Prometheus scraper keep working across restarts.
"""

import os
import secrets

TOKEN_BYTES = 32


def service_token(path):
    """The token in `path`, made (0600) when the file is missing or empty."""
    try:
        with open(path) as f:
            token = f.read().strip()
    except FileNotFoundError:
        token = ""
    if token:
        os.chmod(path, 0o600)
        return token
    token = secrets.token_hex(TOKEN_BYTES)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


def apply_services(services, c):
    """Registers each service with its token and gives it a role holding exactly its scopes."""
    c.JupyterHub.services = [{"name": s["name"], "api_token": service_token(s["tokenFile"])} for s in services]
    c.JupyterHub.load_roles = [
        {"name": s["name"], "description": f"brics-env service {s['name']}", "scopes": list(s["scopes"]), "services": [s["name"]]}
        for s in services
    ]
