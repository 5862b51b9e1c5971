"""Logs on the volumes stay bounded: the hub's log writer (brics-rotating-log, between JupyterHub
and /var/log/jupyterhub/jupyterhub.log) and the Slurm container's rotate-logs, each with a tiny
size limit."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "brics_jupyterhub/scripts/rotating-log.py"
ROTATE = ROOT / "brics_slurm/scripts/rotate-logs.sh"
HUB_START = ROOT / "brics_jupyterhub/scripts/start-jupyterhub.sh"
SLURM_START = ROOT / "brics_slurm/scripts/start-slurm.sh"


def lines(n, width=20):
    return [f"line {i:05d} ".ljust(width - 1, "x") + "\n" for i in range(n)]


def write_through(log, text, max_bytes, keep):
    return subprocess.run(
        [sys.executable, str(WRITER), "--max-bytes", str(max_bytes), "--keep", str(keep), str(log)],
        input=text.encode(),
        capture_output=True,
        timeout=60,
    )


def test_the_hub_log_is_copied_to_stdout_and_rotated_by_size_keeping_k_files(tmp_path):
    log = tmp_path / "jupyterhub.log"
    text = "".join(lines(50))  # 1000 bytes through a 100-byte limit
    r = write_through(log, text, max_bytes=100, keep=3)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == text, "everything reaches podman logs"
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["jupyterhub.log", "jupyterhub.log.1", "jupyterhub.log.2", "jupyterhub.log.3"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 100
    # Newest in the log, then .1, .2, .3; older ones dropped; nothing lost in what is kept.
    kept = "".join((tmp_path / n).read_text() for n in ["jupyterhub.log.3", "jupyterhub.log.2", "jupyterhub.log.1", "jupyterhub.log"])
    # 20-byte lines, 5 to a file: the last 4 files hold the last 20 lines.
    assert kept == "".join(lines(50)[30:])


def test_the_writer_appends_to_an_existing_log_and_rotates_it_when_full(tmp_path):
    log = tmp_path / "jupyterhub.log"
    log.write_text("x" * 90 + "\n")
    write_through(log, "".join(lines(1)), max_bytes=100, keep=2)
    assert (tmp_path / "jupyterhub.log.1").read_text() == "x" * 90 + "\n"
    assert log.read_text() == lines(1)[0]


def test_keep_0_keeps_only_the_current_file(tmp_path):
    log = tmp_path / "jupyterhub.log"
    write_through(log, "".join(lines(20)), max_bytes=50, keep=0)
    assert [p.name for p in tmp_path.iterdir()] == ["jupyterhub.log"]
    assert log.read_text().endswith(lines(20)[-1])


def test_the_writer_outlives_an_unwritable_log_and_termination_signals(tmp_path):
    log = tmp_path / "missing-dir" / "jupyterhub.log"
    proc = subprocess.Popen([sys.executable, str(WRITER), "--max-bytes", "100", "--keep", "1", str(log)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(b"first\n")
    proc.stdin.flush()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)  # podman stop signals the hub; its last lines must still pass
    proc.send_signal(signal.SIGINT)
    proc.stdin.write(b"last words\n")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out == b"first\nlast words\n"
    assert err.decode().count("cannot write") == 1


def test_the_hub_start_script_pipes_jupyterhub_through_the_rotating_writer():
    script = HUB_START.read_text()
    assert '> >(brics-rotating-log --max-bytes "$LOG_MAX_BYTES" --keep "$LOG_KEEP" "$LOG_FILE") 2>&1' in script
    assert "tee" not in script.split("exec jupyterhub", 1)[1]
    assert "COPY scripts/rotating-log.py /usr/local/bin/brics-rotating-log" in (ROOT / "brics_jupyterhub/Containerfile").read_text()
    assert os.access(WRITER, os.X_OK)


# --- Slurm: copy and truncate in place, the daemons keep appending -----------------------------


def test_rotate_logs_copies_and_truncates_what_an_appending_daemon_keeps_writing(tmp_path):
    log = tmp_path / "slurmctld.log"
    small = tmp_path / "slurmd.log"
    small.write_text("quiet\n")
    daemon = open(log, "a")  # slurmctld, slurmd and sshd open their logs for appending
    daemon.write("A" * 150 + "\n")
    daemon.flush()
    for round_ in range(4):
        r = subprocess.run(["bash", str(ROTATE), "100", "2", str(log), str(small), str(tmp_path / "absent.log")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        daemon.write(f"{round_}" * 150 + "\n")
        daemon.flush()
    daemon.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slurmctld.log", "slurmctld.log.1", "slurmctld.log.2", "slurmd.log"]
    # The daemon's next write after a truncation lands at the start of the file, not after a hole.
    assert log.read_text() == "3" * 150 + "\n"
    assert (tmp_path / "slurmctld.log.1").read_text() == "2" * 150 + "\n"
    assert (tmp_path / "slurmctld.log.2").read_text() == "1" * 150 + "\n"
    assert small.read_text() == "quiet\n", "a log under the limit is left alone"
    assert "reached 151 bytes" in r.stderr


def test_rotate_logs_refuses_bad_arguments():
    for args in (["0", "2", "x"], ["10", "-1", "x"], ["10", "2"]):
        assert subprocess.run(["bash", str(ROTATE), *args], capture_output=True).returncode == 2


def test_the_slurm_container_rotates_its_daemons_logs_while_it_watches_them():
    script = SLURM_START.read_text()
    assert 'LOGS=(/var/log/slurmctld.log /var/log/slurmd.log "$SSHD_LOG")' in script
    assert '/usr/local/sbin/rotate-logs "$LOG_MAX_BYTES" "$LOG_KEEP" "${LOGS[@]}"' in script
    assert "COPY scripts/rotate-logs.sh /usr/local/sbin/rotate-logs" in (ROOT / "brics_slurm/Containerfile").read_text()
