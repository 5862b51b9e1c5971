"""Authenticators: the dummy one of the dev environments, and the installed BricsAuthenticator with
the logout behaviour the deployment relies on, provided here when the installed version lacks it."""

import hmac

from jupyterhub.auth import Authenticator
from jupyterhub.handlers.login import LogoutHandler
from jupyterhub.utils import url_path_join
from traitlets import Bool, List, Unicode, default

DUMMY_PORTAL = "brics"


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
# BricsAuthenticator's logout features. bricsauthenticator v0.7.0 (the newest public tag) has
# neither trait; a newer release has both. Each missing one is provided here, so the same
# settings work with either and JupyterHub never meets a setting it does not recognise.

LOGOUT_REDIRECT = "logout_redirect_url"
INVALID_TOKEN_LOGOUT = "invalid_jwt_logout"


def _redirecting_logout(handler_cls):
    class LogoutToRedirectUrl(handler_cls):
        async def render_logout_page(self):
            # The hub's cookies are gone by now; the identity proxy's session is not, and would
            # log the user straight back in unless it is ended too.
            url = self.authenticator.logout_redirect_url
            if url:
                self.redirect(url, permanent=False)
            else:
                await super().render_logout_page()

    return LogoutToRedirectUrl


def _logout_on_invalid_token(handler_cls, token_header):
    class LogoutOnInvalidToken(handler_cls):
        async def get(self, *args, **kwargs):
            try:
                return await super().get(*args, **kwargs)
            except Exception as e:
                # BricsLoginHandler answers 401 to a token it cannot verify (expired, wrong
                # audience, bad signature), and also to a request without one, which is not a
                # stale session to end.
                status = getattr(e, "status_code", None)
                if not (self.authenticator.invalid_jwt_logout and status == 401 and self.request.headers.get(token_header)):
                    raise
                self.log.warning("Invalid identity token (%s): redirecting to logout", e)
                self.redirect(url_path_join(self.hub.base_url, "logout"))

    return LogoutOnInvalidToken


def brics_authenticator_class(base, token_header="X-Auth-Id-Token"):
    """`base` itself when it has both logout traits, else a subclass that adds the missing ones."""
    have = set(base.class_trait_names(config=True))
    missing = [t for t in (LOGOUT_REDIRECT, INVALID_TOKEN_LOGOUT) if t not in have]
    if not missing:
        return base

    traits = {}
    if LOGOUT_REDIRECT in missing:
        traits[LOGOUT_REDIRECT] = Unicode(
            "", help="Where /hub/logout sends the browser after clearing the hub's cookies (empty: the hub's own page)."
        ).tag(config=True)
    if INVALID_TOKEN_LOGOUT in missing:
        traits[INVALID_TOKEN_LOGOUT] = Bool(
            False, help="Send a request with an identity token that fails verification to /hub/logout instead of answering 401."
        ).tag(config=True)

    def get_handlers(self, app):
        handlers = [list(h) for h in base.get_handlers(self, app)]
        for h in handlers:
            if h[0] == r"/login" and INVALID_TOKEN_LOGOUT in missing:
                h[1] = _logout_on_invalid_token(h[1], token_header)
            if h[0] == r"/logout" and LOGOUT_REDIRECT in missing:
                h[1] = _redirecting_logout(h[1])
        if LOGOUT_REDIRECT in missing and not any(h[0] == r"/logout" for h in handlers):
            handlers.append([r"/logout", _redirecting_logout(LogoutHandler)])
        return [tuple(h) for h in handlers]

    # type(base): traitlets' metaclass, which sets up the traits.
    return type(base)(
        f"{base.__name__}WithLogout",
        (base,),
        {
            **traits,
            "get_handlers": get_handlers,
            "__module__": __name__,
            "__doc__": f"{base.__module__}.{base.__name__} with {', '.join(missing)}, which the installed version lacks.",
        },
    )
