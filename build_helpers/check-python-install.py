"""Checks, at image build time, the Python packages an install step just installed.

    check-python-install.py snapshot STATE_FILE
    check-python-install.py verify STATE_FILE [--manifest FILE] [--entry-point GROUP:NAME]...

`snapshot` records which distributions the interpreter running it sees (and their metadata
files); `verify`, run after the install, takes every distribution that is new or was rewritten
and checks that:

- its version is not 0.0.0 (what setuptools-scm's absence or a missing git tag silently gives),
  and equals the version the manifest asks for, when it asks;
- each of its top-level modules imports;
- each of its console scripts starts: the script's own interpreter runs it with a __name__ other
  than "__main__", which imports everything the script imports without calling its function
  (so a script that would submit a Slurm job does nothing);
- each entry point named with --entry-point loads.

Every problem is printed as "check-python-install: FAILED: <distribution> <version>: <what>",
all of them, then it exits 1. The manifest is the `brics-packages` file brics-env stages
("<entry> <distribution> <version or ->" lines).
"""

import importlib
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys

PROG = "check-python-install"


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def fingerprints():
    """{distribution: [metadata path, mtime, inode]} for what this interpreter sees."""
    seen = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        path = str(getattr(dist, "_path", ""))
        try:
            st = os.stat(os.path.join(path, "METADATA"))
            seen[norm(name)] = [path, st.st_mtime_ns, st.st_ino]
        except OSError:
            seen[norm(name)] = [path, None, None]
    return seen


def expected_versions(manifest):
    wanted = {}
    if manifest is None or not os.path.exists(manifest):
        return wanted
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] != "-" and not line.startswith("#"):
                wanted[norm(parts[1])] = parts[2]
    return wanted


def top_level_modules(dist):
    text = dist.read_text("top_level.txt")
    if text:
        return sorted({m.strip() for m in text.splitlines() if m.strip() and not m.startswith("_")})
    found = set()
    for f in dist.files or []:
        parts = f.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data", ".egg-info")):
            continue
        if len(parts) == 1 and parts[0].endswith(".py"):
            found.add(parts[0][:-3])
        elif len(parts) > 1 and parts[-1] == "__init__.py" and len(parts) == 2:
            found.add(parts[0])
    return sorted(m for m in found if not m.startswith("_"))


def script_path(dist, name):
    for f in dist.files or []:
        if f.name == name and len(f.parts) > 1 and f.parts[-2] in ("bin", "Scripts"):
            return os.path.normpath(str(dist.locate_file(f)))
    return None


def interpreter_of(script):
    with open(script, "rb") as f:
        first = f.readline().decode("utf-8", "replace").strip()
    # pip writes "#!/bin/sh" plus a re-exec line when the interpreter path is too long for a shebang.
    if first.startswith("#!") and not first.startswith("#!/bin/sh"):
        return first[2:].split()[0]
    return sys.executable


def probe_script(script):
    code = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='brics_build_check')"
    try:
        r = subprocess.run([interpreter_of(script), "-c", code, script], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{e}"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["exit status %d" % r.returncode])[-1]
        return last
    return None


def verify(before, manifest, entry_points):
    wanted = expected_versions(manifest)
    after = fingerprints()
    changed = sorted(n for n, fp in after.items() if before.get(n) != fp)
    failures = []

    def fail(name, version, what):
        failures.append(f"{PROG}: FAILED: {name} {version}: {what}")

    if not changed:
        failures.append(f"{PROG}: FAILED: the install step installed nothing")
    for name in changed:
        dist = md.distribution(name)
        version = dist.version or "(no version)"
        if version in ("0.0.0", "(no version)"):
            fail(name, version, "installed without a real version: its build could not tell the version "
                 "(setuptools-scm needs a git checkout at a tag, PKG-INFO, or a given version)")
        elif norm(name) in wanted and wanted[norm(name)] != version:
            fail(name, version, f"installed as {version}, but {wanted[norm(name)]} was asked for")
        modules = top_level_modules(dist)
        for module in modules:
            try:
                importlib.import_module(module)
            except BaseException as e:  # noqa: BLE001 - SystemExit from a module counts as broken too
                fail(name, version, f"import {module} fails: {type(e).__name__}: {e}")
        scripts = [ep.name for ep in dist.entry_points if ep.group == "console_scripts"]
        for script in scripts:
            path = script_path(dist, script)
            if path is None:
                fail(name, version, f"console script {script} is not installed")
                continue
            problem = probe_script(path)
            if problem is not None:
                fail(name, version, f"console script {path} does not start: {problem}")
        print(f"{PROG}: {name} {version}: imports {', '.join(modules) or '(no modules)'}"
              + (f"; console scripts {', '.join(scripts)} start" if scripts else ""))
    for spec in entry_points:
        group, _, ep_name = spec.partition(":")
        eps = [ep for ep in md.entry_points(group=group) if ep.name == ep_name]
        if not eps:
            failures.append(f"{PROG}: FAILED: entry point {ep_name} in {group}: none is installed")
            continue
        ep = eps[0]
        owner = ep.dist.name if getattr(ep, "dist", None) is not None else ep.value
        try:
            ep.load()
            print(f"{PROG}: entry point {group}:{ep_name} loads ({ep.value})")
        except BaseException as e:  # noqa: BLE001
            failures.append(f"{PROG}: FAILED: {owner}: entry point {group}:{ep_name} ({ep.value}) does not load: {type(e).__name__}: {e}")
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "snapshot":
        with open(argv[1], "w", encoding="utf-8") as f:
            json.dump(fingerprints(), f)
        return 0
    if len(argv) >= 2 and argv[0] == "verify":
        manifest, entry_points, rest = None, [], argv[2:]
        while rest:
            if rest[0] == "--manifest" and len(rest) > 1:
                manifest, rest = rest[1], rest[2:]
            elif rest[0] == "--entry-point" and len(rest) > 1:
                entry_points.append(rest[1])
                rest = rest[2:]
            else:
                print(f"{PROG}: FAILED: unknown argument {rest[0]!r}", file=sys.stderr)
                return 2
        with open(argv[1], encoding="utf-8") as f:
            before = json.load(f)
        return verify(before, manifest, entry_points)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
