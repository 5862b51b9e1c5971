"""
JupyterHub configuration of every brics-env environment: the logic is the brics_hub package
beside this file (see its __init__.py), so that it can be imported and tested; this file only
hands it the pod's environment and JupyterHub's config object.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from brics_hub import HubConfigError, apply_config, load_settings  # noqa: E402

try:
    apply_config(load_settings(os.environ), get_config())  # noqa: F821  (JupyterHub's config loader provides it)
except HubConfigError as e:
    # One message and a non-zero exit, not a traceback: nothing here is a bug to debug.
    sys.exit(f"jupyterhub_config.py: {e}")
