"""Every setting the hub config makes is one the installed classes read; BricsAuthenticator's logout
features come from the hub module where the installed bricsauthenticator (v0.7.0) lacks them."""

import asyncio

import pytest
from conftest import (
    Authenticator,
    BricsAuthenticator_v0_7,
    BricsAuthenticator_v0_8,
    BricsLoginHandler,
    HTTPError,
    JupyterHub,
    LogoutHandler,
    env_for,
)
from traitlets import Unicode
from traitlets.config import Config

from brics_hub import HubConfigError
from brics_hub.auth import brics_authenticator_class
from brics_hub.recognised import check_recognised, unrecognised_settings

JWT_ENVIRONMENTS = ["dev_realauth", "dev_realauth_zenithclient", "prod"]


def test_a_bricsauthenticator_with_both_logout_traits_is_used_as_it_is():
    assert brics_authenticator_class(BricsAuthenticator_v0_8) is BricsAuthenticator_v0_8


@pytest.mark.parametrize("name", JWT_ENVIRONMENTS)
@pytest.mark.parametrize("installed", [BricsAuthenticator_v0_7, BricsAuthenticator_v0_8], ids=["v0.7.0", "v0.8.0"])
def test_the_config_is_recognised_with_either_bricsauthenticator(loader, name, installed):
    config = loader(env_for(name), authenticator=installed)
    cls = config.JupyterHub.authenticator_class
    assert issubclass(cls, installed)
    assert unrecognised_settings(config, JupyterHub) == []
    authenticator = cls(config=config)
    assert authenticator.invalid_jwt_logout is True
    assert "/_oidc/sign_out?rd=" in authenticator.logout_redirect_url
    assert authenticator.oidc_server == env_for(name)["DEPLOY_CONFIG_OIDC_SERVER"]


def v0_7_handlers(loader):
    config = loader(env_for("dev_realauth"), authenticator=BricsAuthenticator_v0_7)
    authenticator = config.JupyterHub.authenticator_class(config=config)
    return authenticator, {h[0]: h for h in authenticator.get_handlers(app=None)}


def test_v0_7_gets_a_logout_handler_that_redirects_to_the_proxy_sign_out(loader):
    authenticator, handlers = v0_7_handlers(loader)
    assert set(handlers) == {"/login", "/logout"}
    logout_cls = handlers["/logout"][1]
    assert issubclass(logout_cls, LogoutHandler)
    handler = logout_cls(authenticator)
    asyncio.run(handler.get())
    assert handler.redirected_to == authenticator.logout_redirect_url == "/_oidc/sign_out?rd=%2F"
    authenticator.logout_redirect_url = ""
    asyncio.run(handler.get())
    assert handler.redirected_to == "/hub/login", "without a redirect URL, JupyterHub's own logout page"


def login_with(authenticator, login_cls, outcome, token="eyJ.token"):
    handler = login_cls(authenticator, headers={"X-Auth-Id-Token": token} if token else {}, hub_base_url="/jupyter/hub/")
    handler.outcome = outcome
    asyncio.run(handler.get())
    return handler


def test_v0_7_login_sends_a_token_that_fails_verification_to_logout(loader):
    authenticator, handlers = v0_7_handlers(loader)
    login_cls, kwargs = handlers["/login"][1], handlers["/login"][2]
    assert issubclass(login_cls, BricsLoginHandler)
    assert kwargs == {"oidc_server": authenticator.oidc_server}, "the package's own handler arguments are kept"
    invalid = HTTPError(401, "Invalid JWT token: Signature has expired")
    assert login_with(authenticator, login_cls, invalid).redirected_to == "/jupyter/hub/logout"
    assert login_with(authenticator, login_cls, None).redirected_to == "/hub/home", "a valid token still logs in"


@pytest.mark.parametrize(
    "outcome, token, setting",
    [
        (HTTPError(401, "Invalid JWT token: expired"), None, True),  # no token at all: 401, as before
        (HTTPError(403, "No projects with valid platform"), "eyJ.token", True),
        (HTTPError(500), "eyJ.token", True),  # the issuer could not be reached: not the user's token
        (HTTPError(401, "Invalid JWT token: expired"), "eyJ.token", False),
    ],
)
def test_v0_7_login_keeps_every_other_answer(loader, outcome, token, setting):
    authenticator, handlers = v0_7_handlers(loader)
    authenticator.invalid_jwt_logout = setting
    with pytest.raises(HTTPError) as err:
        login_with(authenticator, handlers["/login"][1], outcome, token=token)
    assert err.value.status_code == (401 if token is None else outcome.status_code)


def test_a_setting_no_installed_class_reads_stops_the_hub_naming_setting_class_and_version():
    # traitlets' own Application stands for a class from an installed package here.
    c = Config()
    c.Application.log_level = "INFO"
    c.Application.log_colour = True
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.authenticator_class = BricsAuthenticator_v0_7
    c.BricsAuthenticator.invalid_jwt_logout = True
    with pytest.raises(HubConfigError) as err:
        check_recognised(c, JupyterHub)
    message = str(err.value)
    import importlib.metadata

    traitlets_version = importlib.metadata.version("traitlets")
    assert f"Application.log_colour is not a setting of traitlets.config.application.Application (traitlets {traitlets_version})" in message
    assert "BricsAuthenticator.invalid_jwt_logout is not a setting of conftest.BricsAuthenticator" in message
    assert "log_level" not in message and "cleanup_servers" not in message


def test_a_section_no_class_of_the_hub_reads_is_named():
    c = Config()
    c.JupyterHub.spawner_class = BricsAuthenticator_v0_8  # anything but a spawner
    c.LocalProcessSpawner.cmd = ["x"]
    problems = unrecognised_settings(c, JupyterHub)
    assert len(problems) == 1
    assert problems[0].startswith("LocalProcessSpawner: none of the classes the hub uses")


def test_the_hub_refuses_to_start_with_a_bricsauthenticator_that_lacks_a_setting(loader):
    # bricsauthenticator before v0.5 had oidc_server only: the platform and audience would be ignored.
    class BricsAuthenticator(Authenticator):
        oidc_server = Unicode().tag(config=True)

    with pytest.raises(SystemExit) as exit_:
        loader(env_for("prod"), authenticator=BricsAuthenticator)
    message = str(exit_.value.code)
    assert message.startswith("jupyterhub_config.py: JupyterHub would ignore settings this deployment relies on")
    for name in ("brics_platform", "jwt_audience", "jwt_leeway"):
        assert f"BricsAuthenticator.{name} is not a setting of test_recognised.{BricsAuthenticator.__qualname__}" in message
    assert "used as BricsAuthenticatorWithLogout" in message
    assert "oidc_server" not in message and "logout" not in message.split("relies on", 1)[1].replace("WithLogout", "")
