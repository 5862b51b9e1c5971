"""brics_hub/hub_state.py: the consistent snapshot of the hub's state, its restore, the record of
which JupyterHub wrote the database, and what the database holds (users, servers recorded as
running) read while the hub does not run."""

import base64
import json
import os
import sqlite3
import subprocess
import sys

import pytest
from conftest import CONFIG_DIR

from brics_hub import hub_state

SCRIPT = CONFIG_DIR / "brics_hub" / "hub_state.py"


def make_state(srv, rows=("alice",)):
    """A database with JupyterHub's users/spawners tables as far as hub_state reads them."""
    srv.mkdir(exist_ok=True)
    con = sqlite3.connect(srv / hub_state.DB_FILE)
    con.executescript(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
        "CREATE TABLE servers (id INTEGER PRIMARY KEY);"
        "CREATE TABLE spawners (id INTEGER PRIMARY KEY, user_id INTEGER, server_id INTEGER, name TEXT);"
    )
    for i, name in enumerate(rows, 1):
        con.execute("INSERT INTO users VALUES (?, ?)", (i, name))
    con.commit()
    con.close()
    (srv / hub_state.COOKIE_SECRET_FILE).write_bytes(b"c" * 32)
    (srv / hub_state.CRYPT_KEY_FILE).write_text("ab" * 32 + "\n")


def users_in(db_bytes, tmp_path):
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(db_bytes)
    con = sqlite3.connect(copy)
    try:
        return [r[0] for r in con.execute("SELECT name FROM users ORDER BY id")]
    finally:
        con.close()


def test_snapshot_holds_the_database_and_secrets(tmp_path):
    srv = tmp_path / "srv"
    make_state(srv, ("alice", "bob"))
    hub_state.write_version_record(str(srv), "5.2.1", "abc")
    snap = hub_state.snapshot(str(srv))
    assert snap["format"] == hub_state.SNAPSHOT_FORMAT
    files = {k: base64.b64decode(v) for k, v in snap["files"].items()}
    assert sorted(files) == sorted(hub_state.STATE_FILES)
    assert users_in(files[hub_state.DB_FILE], tmp_path) == ["alice", "bob"]
    assert files[hub_state.COOKIE_SECRET_FILE] == b"c" * 32
    assert snap["version_record"] == {"jupyterhub": "5.2.1", "image_id": "abc"}


def test_snapshot_never_sees_an_uncommitted_transaction(tmp_path):
    srv = tmp_path / "srv"
    make_state(srv)
    writer = sqlite3.connect(srv / hub_state.DB_FILE, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO users VALUES (2, 'half-written')")
    try:
        snap = hub_state.snapshot(str(srv))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert users_in(base64.b64decode(snap["files"][hub_state.DB_FILE]), tmp_path) == ["alice"]


def test_snapshot_without_a_database_says_so(tmp_path):
    with pytest.raises(hub_state.StateError, match="no database"):
        hub_state.snapshot(str(tmp_path))


def test_restore_writes_the_files_0600_and_drops_stale_companions(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_state(src, ("alice",))
    hub_state.write_version_record(str(src), "5.2.1", "old-image")
    snap = hub_state.snapshot(str(src))
    make_state(dst, ("someone-else",))
    (dst / (hub_state.DB_FILE + "-journal")).write_bytes(b"stale")
    assert hub_state.restore(str(dst), json.loads(json.dumps(snap))) == {"users": 1, "active_servers": 0}
    assert users_in((dst / hub_state.DB_FILE).read_bytes(), tmp_path) == ["alice"]
    for name in hub_state.STATE_FILES:
        assert (dst / name).stat().st_mode & 0o777 == 0o600, name
    assert not (dst / (hub_state.DB_FILE + "-journal")).exists()
    # The image that runs next is asked for its version: the id is not carried over.
    assert hub_state.read_version_record(str(dst)) == {"jupyterhub": "5.2.1", "image_id": ""}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"format": 99, "files": {}}, "format"),
        ({"format": hub_state.SNAPSHOT_FORMAT, "files": {hub_state.DB_FILE: ""}}, "a snapshot holds"),
        ({"format": hub_state.SNAPSHOT_FORMAT, "files": {n: "" for n in (*hub_state.STATE_FILES, "../etc/passwd")}}, "a snapshot holds"),
        ({"format": hub_state.SNAPSHOT_FORMAT, "files": {n: "!" for n in hub_state.STATE_FILES}}, "not base64"),
        ("nonsense", "format"),
    ],
)
def test_restore_refuses_what_is_not_a_snapshot(tmp_path, data, message):
    make_state(tmp_path / "srv")
    before = (tmp_path / "srv" / hub_state.DB_FILE).read_bytes()
    with pytest.raises(hub_state.StateError, match=message):
        hub_state.restore(str(tmp_path / "srv"), data)
    assert (tmp_path / "srv" / hub_state.DB_FILE).read_bytes() == before


def test_record_at_start(tmp_path):
    srv = str(tmp_path)
    # A new database: this version writes it.
    assert hub_state.record_at_start(srv, "5.2.1", "img1")[0] is True
    assert hub_state.read_version_record(srv) == {"jupyterhub": "5.2.1", "image_id": "img1"}
    make_state(tmp_path)
    # The same version from another image: recorded, with the new image.
    assert hub_state.record_at_start(srv, "5.2.1", "img2")[0] is True
    assert hub_state.read_version_record(srv)["image_id"] == "img2"
    # Another version: left for brics-env to upgrade, the record untouched.
    recorded, message = hub_state.record_at_start(srv, "5.4.2", "img3")
    assert recorded is False
    assert "written by JupyterHub 5.2.1" in message and "5.4.2" in message and "brics-env up" in message
    assert hub_state.read_version_record(srv) == {"jupyterhub": "5.2.1", "image_id": "img2"}
    # A database from before the record existed: recorded as this version's.
    os.unlink(tmp_path / hub_state.VERSION_FILE)
    assert hub_state.record_at_start(srv, "5.4.2", "img3")[0] is True


def test_record_at_start_keeps_the_image_brics_env_recorded(tmp_path):
    srv = str(tmp_path)
    make_state(tmp_path)
    hub_state.write_version_record(srv, "5.2.1", "img1")
    # An unprivileged container does not know its image: the id beside its version stays.
    assert hub_state.record_at_start(srv, "5.2.1", "")[0] is True
    assert hub_state.read_version_record(srv) == {"jupyterhub": "5.2.1", "image_id": "img1"}
    # ... but not beside another version: a new database's record has no image then.
    os.unlink(tmp_path / hub_state.DB_FILE)
    assert hub_state.record_at_start(srv, "5.4.2", "")[0] is True
    assert hub_state.read_version_record(srv) == {"jupyterhub": "5.4.2", "image_id": ""}


def test_kept_files_travel_with_the_snapshot_when_present(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_state(src)
    (src / "prometheus-service.token").write_text("scrape\n")
    snap = hub_state.snapshot(str(src), keep=["prometheus-service.token", "brics-env-service.token"])
    assert sorted(snap["files"]) == sorted([*hub_state.STATE_FILES, "prometheus-service.token"]), "an absent kept file is left out"
    dst.mkdir()
    hub_state.restore(str(dst), snap, keep=["prometheus-service.token", "brics-env-service.token"])
    assert (dst / "prometheus-service.token").read_text() == "scrape\n"
    assert (dst / "prometheus-service.token").stat().st_mode & 0o777 == 0o600
    with pytest.raises(hub_state.StateError, match="a snapshot holds"):
        hub_state.restore(str(dst), snap)


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "", hub_state.VERSION_FILE, hub_state.DB_FILE])
def test_only_plain_other_file_names_may_be_kept(tmp_path, name):
    make_state(tmp_path)
    with pytest.raises(hub_state.StateError, match="not a file name a snapshot may keep"):
        hub_state.snapshot(str(tmp_path), keep=[name])


def test_info_of_a_state_directory(tmp_path):
    assert hub_state.info(str(tmp_path)) == {"database": False, "users": 0, "active_servers": [], "version_record": None}
    make_state(tmp_path, ("alice", "bob"))
    hub_state.write_version_record(str(tmp_path), "5.2.1", "img")
    assert hub_state.info(str(tmp_path)) == {
        "database": True,
        "users": 2,
        "active_servers": [],
        "version_record": {"jupyterhub": "5.2.1", "image_id": "img"},
    }


def test_a_broken_record_reads_as_none(tmp_path):
    (tmp_path / hub_state.VERSION_FILE).write_text("{not json")
    assert hub_state.read_version_record(str(tmp_path)) is None


def test_container_image_id(tmp_path):
    env = tmp_path / ".containerenv"
    env.write_text('engine="podman-4.3.1"\nname="x"\nid="c0ffee"\nimage="localhost/brics_jupyterhub:dev-latest"\nimageid="0123abcd"\nrootless=0\n')
    assert hub_state.container_image_id(str(env)) == "0123abcd"
    assert hub_state.container_image_id(str(tmp_path / "absent")) == ""


def test_active_servers_counts_spawners_with_a_server(tmp_path):
    make_state(tmp_path, ("alice", "bob", "carol"))
    con = sqlite3.connect(tmp_path / hub_state.DB_FILE)
    con.executemany("INSERT INTO servers VALUES (?)", [(1,), (2,)])
    con.executemany(
        "INSERT INTO spawners (user_id, server_id, name) VALUES (?, ?, ?)",
        [(1, 1, ""), (2, None, ""), (3, 2, "gpu")],
    )
    con.commit()
    con.close()
    assert hub_state.active_servers(str(tmp_path)) == [{"user": "alice", "server": ""}, {"user": "carol", "server": "gpu"}]
    assert hub_state.active_servers(str(tmp_path / "nothing")) == []


def test_run_by_path_without_the_package(tmp_path):
    """The script runs as a file (no brics_hub import, so no JupyterHub needed): one-off containers
    and `podman exec` run it so; secrets go through stdin/stdout only."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_state(src)
    dst.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    snap = subprocess.run([sys.executable, str(SCRIPT), "snapshot", "--srv", str(src)], capture_output=True, check=True, env=env)
    subprocess.run([sys.executable, str(SCRIPT), "restore", "--srv", str(dst)], input=snap.stdout, capture_output=True, check=True, env=env)
    assert (dst / hub_state.CRYPT_KEY_FILE).read_text() == (src / hub_state.CRYPT_KEY_FILE).read_text()
    failed = subprocess.run([sys.executable, str(SCRIPT), "snapshot", "--srv", str(tmp_path / "none")], capture_output=True, text=True, env=env)
    assert failed.returncode == 1
    assert "no database" in failed.stderr and "Traceback" not in failed.stderr
