"""The dummy authenticator of the dev environments."""

import hmac

from jupyterhub.auth import Authenticator
from traitlets import List, Unicode, default

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
