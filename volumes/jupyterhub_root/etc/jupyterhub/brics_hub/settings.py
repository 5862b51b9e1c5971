"""
The hub's settings: what the pod tells the hub container, as values of the right Python type.

The manifest (src/plan/hubSettings.ts, generated from KEY_SPECS in src/plan/deployConfig.ts) puts
one line of JSON in BRICS_ENV_SETTINGS: the environment's name, its authentication and Slurm
placement, for each deploy-config key the environment uses, the env var that carries its
value, how to convert it, whether it is required and its default, and the JupyterHub services to
register (name, scopes, token file). The values themselves come from
the deploy ConfigMap as those env vars. `brics-env check` has validated them against KEY_SPECS;
this module only converts them, so the rules and defaults have one owner. A value that cannot
be converted (the ConfigMap was edited after the check) stops the hub with a message naming its key.
"""

import json
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

SETTINGS_VAR = "BRICS_ENV_SETTINGS"


class HubConfigError(Exception):
    """The hub cannot start with what it was given; the message says what to fix."""


def _text(raw):
    return raw


def _words(raw):
    return raw.split()


def _whole_number(what):
    def convert(raw):
        # isdecimal() alone accepts other scripts' digits, which int() would read.
        if not (raw.isascii() and raw.isdecimal()):
            raise ValueError(f"is not {what}")
        return int(raw)

    return convert


def _url_path(raw):
    # What JupyterHub does to its base_url (and normaliseBaseUrl in src/plan/deployConfig.ts).
    return ("" if raw.startswith("/") else "/") + raw + ("" if raw.endswith("/") else "/")


CONVERTERS = {
    "text": _text,
    "words": _words,
    "seconds": _whole_number("a whole number of seconds"),
    "count": _whole_number("a whole number"),
    "urlPath": _url_path,
}


@dataclass(frozen=True)
class AccountRule:
    """Which Unix account names a job may run as: devUsers' rule in KEY_SPECS, applied here to the
    account names the identity token's projects claim gives."""

    pattern: str
    max_length: int
    description: str

    def allows(self, name):
        return isinstance(name, str) and len(name) <= self.max_length and re.fullmatch(self.pattern, name) is not None


@dataclass(frozen=True)
class Settings:
    """The environment and its deploy-config values, looked up by ConfigMap key: settings["baseUrl"]."""

    environment: str
    auth: str
    slurm: str
    ingress: str
    account_rule: AccountRule
    values: Mapping[str, Any] = field(default_factory=dict)
    # ({"name": ..., "scopes": [...], "tokenFile": ...}, ...): see services.py
    services: tuple = ()

    def __getitem__(self, key):
        try:
            return self.values[key]
        except KeyError:
            raise HubConfigError(
                f"the hub module reads deploy-config key {key!r}, but the manifest of {self.environment} does not "
                "pass it to the hub: the key's entry in KEY_SPECS (src/plan/deployConfig.ts) must say that "
                f"{self.environment} uses it; then run `brics-env manifest` and play combined.yaml again"
            ) from None


def _describe(key, var):
    return f"deploy-config key {key} ({var})"


def load_settings(environ):
    """Settings from the hub container's environment; one HubConfigError lists every problem."""
    raw = environ.get(SETTINGS_VAR)
    if not raw:
        raise HubConfigError(
            f"{SETTINGS_VAR} is not set: the hub container must be started from the combined.yaml "
            "that `brics-env manifest` writes"
        )
    try:
        data = json.loads(raw)
        environment, auth, slurm, ingress, keys = data["environment"], data["auth"], data["slurm"], data["ingress"], data["keys"]
        specs = [(k["key"], k["env"], k["type"], k["required"], k.get("default")) for k in keys]
        account = data["accountName"]
        account_rule = AccountRule(re.compile(account["pattern"]).pattern, int(account["maxLength"]), str(account["description"]))
        services = tuple(
            MappingProxyType({"name": str(s["name"]), "scopes": tuple(s["scopes"]), "tokenFile": str(s["tokenFile"])})
            for s in data["services"]
        )
    except (ValueError, KeyError, TypeError, re.error) as e:
        raise HubConfigError(
            f"{SETTINGS_VAR} is not what `brics-env manifest` writes ({type(e).__name__}: {e}); "
            "write combined.yaml again with the brics-env that matches this hub image"
        ) from None

    values = {}
    problems = []
    for key, var, kind, required, default in specs:
        convert = CONVERTERS.get(kind)
        if convert is None:
            problems.append(f"{_describe(key, var)} has type {kind!r}, which this hub module does not know")
            continue
        value = environ.get(var)
        if value is None:
            value = default
        if value is None or (required and value == ""):
            if required:
                problems.append(f"{_describe(key, var)} is missing")
            else:
                values[key] = None
            continue
        try:
            values[key] = convert(value)
        except ValueError as e:
            problems.append(f"{_describe(key, var)} = {value!r} {e}")
    if problems:
        raise HubConfigError(
            f"the deploy ConfigMap of {environment} is not usable; fix deploy-configmap.yaml "
            "(`brics-env check` says what is expected) and play it again:\n  - " + "\n  - ".join(problems)
        )
    return Settings(
        environment=environment,
        auth=auth,
        slurm=slurm,
        ingress=ingress,
        account_rule=account_rule,
        values=MappingProxyType(values),
        services=services,
    )
