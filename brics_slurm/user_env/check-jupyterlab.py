"""Starts the user environment's Jupyter server once, as a spawned job does (without JupyterHub), and
checks that users would get JupyterLab: the Lab page and its scripts are served, terminals are
there, and the default kernel runs code. The image build runs it inside
`. <condaPrefixDir>/bin/activate jupyter-user-env`; on failure it exits non-zero with one line saying
what is missing, after the server's log.

Only the standard library: it runs on whichever Python the environment has.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TOKEN = "brics-build-check"


def fail(what: str, log: str = "") -> None:
    if log:
        sys.stderr.write(f"--- Jupyter server log ---\n{log[-4000:]}\n--- end ---\n")
    sys.exit(f"check-jupyterlab: {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: str) -> None:
        self.port = free_port()
        self.log_path = os.path.join(home, "server.log")
        # Everything the server writes (runtime files, workspaces, settings) stays in the throw-away home.
        env = dict(os.environ, HOME=home, JUPYTER_RUNTIME_DIR=os.path.join(home, "runtime"))
        cmd = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={home}",
            "--allow-root",
        ]
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=home, stdout=self.log_file, stderr=subprocess.STDOUT)

    def log(self) -> str:
        self.log_file.flush()
        with open(self.log_path) as f:
            return f.read()

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            headers={"Authorization": f"token {TOKEN}"},
            data=b"{}" if method == "POST" else None,
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method: str, path: str, what: str):
        status, body = self.request(method, path)
        if status >= 300:
            fail(f"{what}: {method} {path} answered {status}", self.log())
        return json.loads(body)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log_file.close()


def until(what: str, seconds: float, probe, server: Server):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            fail(f"the Jupyter server exited ({server.proc.returncode}) while waiting for {what}", server.log())
        try:
            value = probe()
        except (OSError, ValueError):
            value = None
        if value:
            return value
        time.sleep(0.3)
    fail(f"timed out after {seconds:.0f} s waiting for {what}", server.log())


def run_kernel(name: str, home: str) -> None:
    """The server's default kernel runs code (a client of its own: the server reports a kernel's
    state only to the browser that is connected to it)."""
    from jupyter_client.manager import start_new_kernel

    os.environ["HOME"] = home
    os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(home, "runtime")
    try:
        km, kc = start_new_kernel(kernel_name=name, startup_timeout=60, cwd=home)
    except Exception as e:
        fail(f"the {name} kernel does not start: {e}")
    out: list[str] = []
    try:
        reply = kc.execute_interactive(
            "print(6 * 7)",
            timeout=60,
            output_hook=lambda msg: out.append(msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None,
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    if reply["content"].get("status") != "ok" or "42" not in "".join(out):
        fail(f"the {name} kernel did not run code: {reply['content']}, output {out!r}")


def main() -> None:
    try:
        import jupyterlab
    except ImportError:
        fail("jupyterlab is not importable in the environment")
    with tempfile.TemporaryDirectory(prefix="brics-lab-check-") as home:
        server = Server(home)
        try:
            until("the server to answer", 90, lambda: server.request("GET", "/api/status")[0] == 200, server)

            status, page = server.request("GET", "/lab")
            if status != 200 or b"JupyterLab" not in page:
                fail(f"/lab answered {status} without JupyterLab's page (is the jupyterlab server extension enabled?)", server.log())
            scripts = re.findall(rb'<script[^>]+src="([^"]+\.js)[^"]*"', page)
            if not scripts:
                fail("JupyterLab's page loads no script", server.log())
            for src in scripts:
                path = src.decode()
                path = path if path.startswith("/") else f"/lab/{path}"
                status, _ = server.request("GET", path)
                if status != 200:
                    fail(f"JupyterLab's script {path} answered {status}: its built application is missing", server.log())

            specs = server.json("GET", "/api/kernelspecs", "kernel specs")
            default = specs.get("default")
            if not specs.get("kernelspecs") or default not in specs["kernelspecs"]:
                fail(f"no default kernel (kernel specs: {sorted(specs.get('kernelspecs', {}))})", server.log())
            server.json("GET", "/api/terminals", "terminals (jupyter_server_terminals)")
        finally:
            server.stop()
        run_kernel(default, home)
    print(f"check-jupyterlab: JupyterLab {jupyterlab.__version__} serves its page and scripts; terminals; kernel {default} runs code")


if __name__ == "__main__":
    main()
