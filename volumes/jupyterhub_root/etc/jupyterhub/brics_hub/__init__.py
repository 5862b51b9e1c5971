"""
The hub side of brics-env: `apply_config(load_settings(os.environ), c)` configures JupyterHub for
whichever environment the pod describes. jupyterhub_config.py, beside this package on the
jupyterhub_root volume (mounted read-only at /etc/jupyterhub), does only that.

    settings.py    what the pod gives the hub container -> typed settings
    config.py      settings -> traitlets config, checked against the installed classes (recognised.py)
    auth.py        the dummy authenticator; BricsAuthenticator's logout features where it lacks them
    spawner.py     the installed BricsSlurmSpawner, reconnecting after restarts, failing readably (failures.py)
    slurm.py       the ssh/sudo/slurmspawner_wrappers commands and the batch script
"""

from .config import apply_config
from .settings import HubConfigError, Settings, load_settings

__all__ = ["HubConfigError", "Settings", "apply_config", "load_settings"]
