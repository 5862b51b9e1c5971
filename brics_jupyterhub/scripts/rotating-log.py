#!/usr/bin/env python3
"""
rotating-log --max-bytes N --keep K FILE

Copies standard input to standard output (podman logs) and appends it to FILE, line by line, as
`tee -a FILE` would, but keeps FILE below about N bytes: before a line would take it past N, FILE
becomes FILE.1 (FILE.1 becomes FILE.2, and so on; FILE.K is dropped) and a new FILE is started.
So the log on the volume never holds more than about (K + 1) * N bytes, and nothing is lost to
rotation: the writer itself renames the files, so no line is written while they move.

The hub's start script runs JupyterHub with its output piped through this. It survives what would
stop the hub's output: SIGINT/SIGTERM are ignored (it ends when the hub closes the pipe, after
the hub's last words), and a file it cannot write is reported once and skipped while standard
output goes on.
"""

import argparse
import os
import signal
import sys


class RotatingFile:
    def __init__(self, path, max_bytes, keep):
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self.file = None
        self.size = 0
        self.failed = False

    def _open(self):
        self.file = open(self.path, "ab")
        self.size = self.file.tell()

    def _rotate(self):
        self.file.close()
        self.file = None
        for i in range(self.keep - 1, 0, -1):
            older = f"{self.path}.{i}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{i + 1}")
        if self.keep > 0:
            os.replace(self.path, f"{self.path}.1")
        else:
            os.remove(self.path)

    def write(self, line):
        try:
            if self.file is None:
                self._open()
            if self.size > 0 and self.size + len(line) > self.max_bytes:
                self._rotate()
                self._open()
            self.file.write(line)
            self.file.flush()
            self.size += len(line)
            self.failed = False
        except OSError as e:
            if not self.failed:
                sys.stderr.write(f"rotating-log: cannot write {self.path}: {e}; still copying to standard output\n")
                sys.stderr.flush()
            self.failed = True
            self.file = None


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="rotating-log", description="tee -a with size-based rotation")
    parser.add_argument("--max-bytes", type=positive, required=True, help="start a new file before it passes this size")
    parser.add_argument("--keep", type=int, choices=range(0, 100), metavar="K", required=True, help="rotated files kept (FILE.1 .. FILE.K)")
    parser.add_argument("file")
    args = parser.parse_args(argv)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    log = RotatingFile(args.file, args.max_bytes, args.keep)
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        try:
            out.write(line)
            out.flush()
        except OSError:
            pass  # nobody reads standard output any more; the file still gets the line
        log.write(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
