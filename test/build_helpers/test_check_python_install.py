"""build_helpers/check-python-install.py, the check every image build runs after installing Python
packages, against distributions written into a throwaway site directory the way pip lays them out
(dist-info with METADATA, RECORD, entry_points.txt, top_level.txt; console scripts in ../bin)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = Path(__file__).resolve().parents[2] / "build_helpers" / "check-python-install.py"


def install(site: Path, name: str, version: str, module_code: str = "", scripts: dict | None = None, eps: dict | None = None):
    """A distribution as pip leaves it: module, dist-info, console scripts."""
    module = name.replace("-", "_")
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(module_code)
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    record = [f"{module}/__init__.py,,", f"{info.name}/METADATA,,"]
    groups = dict(eps or {})
    if scripts:
        groups["console_scripts"] = scripts
        bin_dir = site.parent / "bin"
        bin_dir.mkdir(exist_ok=True)
        for script, target in scripts.items():
            mod, func = target.split(":")
            path = bin_dir / script
            path.write_text(
                f"#!{sys.executable}\nimport sys\nfrom {mod} import {func}\n"
                f"if __name__ == '__main__':\n    sys.exit({func}())\n"
            )
            path.chmod(0o755)
            record.append(f"../bin/{script},,")
    if groups:
        text = "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) for g, entries in groups.items())
        (info / "entry_points.txt").write_text(text)
    (info / "RECORD").write_text("\n".join(record) + "\n")


def run(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, env=env)


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "lib" / "site-packages"
    root.mkdir(parents=True)
    state = tmp_path / "before.json"
    assert run(root, "snapshot", str(state)).returncode == 0
    return root, state


def test_passes_what_installed_well_and_runs_no_console_script(site, tmp_path):
    root, state = site
    marker = tmp_path / "ran"
    install(
        root,
        "slurmspawner_wrappers",
        "0.2.1",
        module_code=f"def run_sbatch():\n    open({str(marker)!r}, 'w').write('submitted')\n    return 0\n",
        scripts={"slurmspawner_sbatch": "slurmspawner_wrappers:run_sbatch"},
    )
    manifest = tmp_path / "brics-packages"
    manifest.write_text("slurmspawner_wrappers slurmspawner-wrappers 0.2.1\n")
    r = run(root, "verify", str(state), "--manifest", str(manifest))
    assert r.returncode == 0, r.stderr
    assert "slurmspawner-wrappers 0.2.1: imports slurmspawner_wrappers; console scripts slurmspawner_sbatch start" in r.stdout
    assert not marker.exists(), "the console script's function ran"


def test_fails_a_package_without_a_version_or_with_another_one(site, tmp_path):
    root, state = site
    install(root, "bricsauthenticator", "0.0.0")
    install(root, "batchspawner", "1.2.0")
    manifest = tmp_path / "brics-packages"
    manifest.write_text("batchspawner batchspawner 1.3.0\nbricsauthenticator bricsauthenticator -\n")
    r = run(root, "verify", str(state), "--manifest", str(manifest))
    assert r.returncode == 1
    assert "FAILED: bricsauthenticator 0.0.0: installed without a real version" in r.stderr
    assert "FAILED: batchspawner 1.2.0: installed as 1.2.0, but 1.3.0 was asked for" in r.stderr


def test_fails_a_package_that_does_not_import_or_whose_script_does_not_start(site):
    root, state = site
    install(root, "bricsauthenticator", "0.7.0", module_code="from ._version import __version__\n")
    install(root, "wrappers", "0.2.1", module_code="", scripts={"slurmspawner_squeue": "wrappers:run_squeue"})
    r = run(root, "verify", str(state))
    assert r.returncode == 1
    assert "FAILED: bricsauthenticator 0.7.0: import bricsauthenticator fails: ModuleNotFoundError" in r.stderr
    assert "FAILED: wrappers 0.2.1: console script" in r.stderr
    assert "does not start: ImportError: cannot import name 'run_squeue'" in r.stderr


def test_checks_named_entry_points_load(site):
    root, state = site
    install(
        root,
        "bricsauthenticator",
        "0.7.0",
        module_code="class BricsAuthenticator:\n    pass\n",
        eps={"jupyterhub.authenticators": {"brics": "bricsauthenticator:BricsAuthenticator"}, "jupyterhub.spawners": {"brics": "bricsauthenticator:Missing"}},
    )
    r = run(root, "verify", str(state), "--entry-point", "jupyterhub.authenticators:brics", "--entry-point", "jupyterhub.spawners:brics", "--entry-point", "nope:x")
    assert r.returncode == 1
    assert "entry point jupyterhub.authenticators:brics loads" in r.stdout
    assert "FAILED: bricsauthenticator: entry point jupyterhub.spawners:brics (bricsauthenticator:Missing) does not load" in r.stderr
    assert "FAILED: entry point x in nope: none is installed" in r.stderr


def test_fails_when_nothing_was_installed(site):
    root, state = site
    r = run(root, "verify", str(state))
    assert r.returncode == 1
    assert "the install step installed nothing" in r.stderr
