"""
The hub's state files in /srv/jupyterhub, for brics-env's backup, restore and upgrade steps and for
the hub image's start script. Standard library only, and run as a file (`python3 hub_state.py
<command> --srv DIR`, or its text through `python3 -c`), so it works in any container that has the
volume and a python3, without importing JupyterHub or the rest of brics_hub.

    snapshot [--keep NAME ...]
                      the database (SQLite's online backup API: consistent while the hub writes),
                      cookie secret, crypt key and the files NAME (the services' tokens) when
                      present, with the version record, as JSON on stdout
    restore [--keep NAME ...]
                      writes what `snapshot` printed (read from stdin) into DIR, replacing what
                      is there; prints how many users and running servers the database records
    info              whether there is a database, its users, the servers it records as running,
                      and the version record, as JSON (the hub need not run)
    record-at-start   the start script's step: records this JupyterHub's version as the one that
                      writes the database, unless the database was written by another version
    set-version --version V [--image-id ID]
                      records V (after `jupyterhub upgrade-db` with image ID)

Secrets travel only on stdin and stdout, never in arguments; nothing is printed on failure but one
line on stderr.
"""

import argparse
import base64
import json
import os
import re
import sqlite3
import sys
import tempfile

DB_FILE = "jupyterhub.sqlite"
COOKIE_SECRET_FILE = "jupyterhub_cookie_secret"
CRYPT_KEY_FILE = "jupyterhub_crypt_key"
# Which JupyterHub last ran against the database, and from which image (brics-env reads it).
VERSION_FILE = "jupyterhub-db-version.json"
# SQLite's companions of a database file; stale ones must not meet a restored database.
DB_COMPANIONS = ("-journal", "-wal", "-shm")
# What cannot be regenerated; a snapshot always holds these.
STATE_FILES = (DB_FILE, COOKIE_SECRET_FILE, CRYPT_KEY_FILE)
SNAPSHOT_FORMAT = 1
# A file named with --keep sits in DIR itself.
KEPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StateError(Exception):
    """Something the operator must fix; the message says what."""


def read_version_record(srv):
    try:
        with open(os.path.join(srv, VERSION_FILE), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("jupyterhub"), str) else None


def _owner_of(directory):
    st = os.stat(directory)
    return (st.st_uid, st.st_gid)


def _write_atomic(path, content, mode, owner):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_version_record(srv, version, image_id=""):
    record = {"jupyterhub": version, "image_id": image_id}
    _write_atomic(os.path.join(srv, VERSION_FILE), (json.dumps(record) + "\n").encode(), 0o644, _owner_of(srv))
    return record


def _kept_names(keep):
    for name in keep:
        if not KEPT_NAME.match(name) or name in STATE_FILES or name == VERSION_FILE:
            raise StateError(f"{name!r} is not a file name a snapshot may keep")
    return tuple(keep)


def database_copy(db_path):
    """The database's bytes as of one moment, through SQLite's backup API, which copies under a read
    lock (waiting while the hub writes) and so never sees half a transaction."""
    if not os.path.exists(db_path):
        raise StateError(f"there is no database at {db_path}")
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, DB_FILE)
        # Not read-only: after a crash SQLite must be able to roll back a hot journal first.
        src = sqlite3.connect(db_path, timeout=60)
        try:
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        check = sqlite3.connect(copy)
        try:
            result = check.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            check.close()
        if result != "ok":
            raise StateError(f"the copy of {db_path} fails SQLite's integrity check: {result}")
        with open(copy, "rb") as f:
            return f.read()


def snapshot(srv, keep=()):
    """What cannot be regenerated, as {"format", "files": {name: base64}, "version_record"}."""
    files = {DB_FILE: database_copy(os.path.join(srv, DB_FILE))}
    for name in (COOKIE_SECRET_FILE, CRYPT_KEY_FILE, *_kept_names(keep)):
        path = os.path.join(srv, name)
        try:
            with open(path, "rb") as f:
                files[name] = f.read()
        except FileNotFoundError:
            if name in STATE_FILES:
                raise StateError(f"{path} is missing; the hub writes it at its first start") from None
    return {
        "format": SNAPSHOT_FORMAT,
        "files": {name: base64.b64encode(data).decode("ascii") for name, data in files.items()},
        "version_record": read_version_record(srv),
    }


def restore(srv, data, keep=()):
    """Writes a snapshot back: every state file replaced (0600, owned as DIR is), SQLite's stale
    companions removed, the version record as it was when the snapshot was taken (its image id
    left out, so the next start asks the image). Nothing is written unless all of it is valid."""
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise StateError(f"not a snapshot of format {SNAPSHOT_FORMAT}")
    files = data.get("files")
    allowed = set(STATE_FILES) | set(_kept_names(keep))
    if not isinstance(files, dict) or not set(STATE_FILES) <= set(files) or not set(files) <= allowed:
        raise StateError(f"a snapshot holds {', '.join(STATE_FILES)} and, besides, only {', '.join(keep) or 'nothing'}")
    try:
        decoded = {name: base64.b64decode(value, validate=True) for name, value in files.items()}
    except (TypeError, ValueError):
        raise StateError("a file of the snapshot is not base64") from None
    os.makedirs(srv, exist_ok=True)
    owner = _owner_of(srv)
    for suffix in DB_COMPANIONS:
        companion = os.path.join(srv, DB_FILE + suffix)
        if os.path.exists(companion):
            os.unlink(companion)
    for name, content in decoded.items():
        _write_atomic(os.path.join(srv, name), content, 0o600, owner)
    record = data.get("version_record")
    if isinstance(record, dict) and isinstance(record.get("jupyterhub"), str):
        write_version_record(srv, record["jupyterhub"])
    elif os.path.exists(os.path.join(srv, VERSION_FILE)):
        os.unlink(os.path.join(srv, VERSION_FILE))
    return {"users": count_users(srv), "active_servers": len(active_servers(srv))}


def _read_only(srv):
    return sqlite3.connect(f"file:{os.path.join(srv, DB_FILE)}?mode=ro", uri=True, timeout=60)


def count_users(srv):
    con = _read_only(srv)
    try:
        return con.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        con.close()


def active_servers(srv):
    """Servers the database records as running: JupyterHub links a spawner to a server row while
    it runs or starts, and unlinks it when the server stops."""
    if not os.path.exists(os.path.join(srv, DB_FILE)):
        return []
    con = _read_only(srv)
    try:
        rows = con.execute(
            "SELECT users.name, spawners.name FROM spawners JOIN users ON users.id = spawners.user_id "
            "WHERE spawners.server_id IS NOT NULL ORDER BY users.name, spawners.name"
        ).fetchall()
    finally:
        con.close()
    return [{"user": user, "server": server or ""} for user, server in rows]


def info(srv):
    exists = os.path.exists(os.path.join(srv, DB_FILE))
    return {
        "database": exists,
        "users": count_users(srv) if exists else 0,
        "active_servers": active_servers(srv),
        "version_record": read_version_record(srv),
    }


def record_at_start(srv, version, image_id):
    """(recorded, message). The start script runs this before JupyterHub opens the database: a
    new database, an unrecorded one or one written by this same version is recorded as this
    version's; one written by another version is left for `brics-env up` to back up and upgrade."""
    record = read_version_record(srv)
    if os.path.exists(os.path.join(srv, DB_FILE)) and record is not None and record["jupyterhub"] != version:
        return False, (
            f"the database was written by JupyterHub {record['jupyterhub']} and this image has {version}: "
            "'brics-env up' upgrades it (jupyterhub upgrade-db) after taking a backup"
        )
    if not image_id and record is not None and record["jupyterhub"] == version:
        # Podman tells a container its image only when privileged; the id brics-env recorded
        # beside this same version stays, so that `up` need not ask the image again.
        image_id = record.get("image_id") or ""
    if record != {"jupyterhub": version, "image_id": image_id}:
        write_version_record(srv, version, image_id)
    return True, f"recorded JupyterHub {version} as the version that writes the database"


def container_image_id(containerenv="/run/.containerenv"):
    """The image id podman writes into every container's /run/.containerenv, or ""."""
    try:
        with open(containerenv, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return ""
    m = re.search(r'^imageid="([0-9a-f]+)"$', text, re.M)
    return m.group(1) if m else ""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hub_state.py", description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("command", choices=["snapshot", "restore", "info", "record-at-start", "set-version"])
    parser.add_argument("--srv", default="/srv/jupyterhub", help="the hub's state directory")
    parser.add_argument("--keep", action="append", default=[], help="snapshot, restore: a further file of DIR to carry")
    parser.add_argument("--version", help="set-version: the JupyterHub version to record")
    parser.add_argument("--image-id", default="", help="set-version: the image that has that version")
    args = parser.parse_args(argv)
    try:
        if args.command == "snapshot":
            json.dump(snapshot(args.srv, args.keep), sys.stdout)
        elif args.command == "restore":
            try:
                data = json.load(sys.stdin)
            except ValueError:
                raise StateError("stdin is not a snapshot (JSON)") from None
            json.dump(restore(args.srv, data, args.keep), sys.stdout)
        elif args.command == "info":
            json.dump(info(args.srv), sys.stdout)
        elif args.command == "record-at-start":
            import jupyterhub

            _, message = record_at_start(args.srv, jupyterhub.__version__, container_image_id())
            print(f"hub_state: {message}", file=sys.stderr)
        else:
            if not args.version:
                raise StateError("set-version needs --version")
            write_version_record(args.srv, args.version, args.image_id)
    except (StateError, sqlite3.Error, OSError) as e:
        print(f"hub_state {args.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
