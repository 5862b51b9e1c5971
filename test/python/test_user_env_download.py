"""The Slurm image's Miniforge download, failing as it does on an offline machine: one readable
message naming the mirror variable and the Debian alternative, not urllib's traceback."""

import socket
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "brics_slurm/scripts/build/install-jupyter-user-env.sh"


def refused_url():
    # A loopback port nothing listens on: bound, then closed again.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/miniforge"


def test_an_unreachable_miniforge_mirror_is_one_readable_message(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "JUPYTER_USER_ENV": "miniforge", "MINIFORGE_VERSION": "24.11.3-0",
           "MINIFORGE_DOWNLOAD_URL": refused_url()}
    r = subprocess.run(["sh", str(SCRIPT), str(tmp_path / "conda"), str(tmp_path / "env.yml"), str(tmp_path / "build_data")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "cannot download the Miniforge installer from http://127.0.0.1:" in r.stderr
    assert "Connection refused" in r.stderr
    assert "BRICS_ENV_MINIFORGE_DOWNLOAD_URL" in r.stderr
    assert "BRICS_ENV_JUPYTER_USER_ENV=debian" in r.stderr
    assert not (tmp_path / "conda").exists(), "nothing half-installed"
