"""Helpers for the worker tests: worker processes, output files and bounded waits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ymtest import ADDRESS_RE, Server, binary, stop_process  # noqa: E402


def example_worker() -> str:
    path = os.environ.get("YM_EXAMPLE_WORKER")
    if not path:
        path = os.path.join(os.path.dirname(binary()), "ym_example_worker")
    if not os.path.exists(path):
        raise RuntimeError(f"ym_example_worker not found at {path}; set YM_EXAMPLE_WORKER")
    return path


def wait_for(cond: Callable[[], object], timeout: float, what: str, step: float = 0.05):
    """Polls cond() until it is truthy; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FixedPortServer(Server):
    """A Server that listens on a given port, so that it can be restarted at the same address
    (ymtest.Server always asks for port 0, which changes the address on every start)."""

    def __init__(self, data_dir: str, port: int):
        super().__init__(data_dir)
        self.fixed_port = port

    def start(self, timeout: float = 30.0) -> "FixedPortServer":
        args = [binary(), "server", "--listen", f"127.0.0.1:{self.fixed_port}",
                "--data-dir", self.data_dir]
        self.log_lines = []
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        found = threading.Event()

        def read_log(proc):
            for line in proc.stderr:
                self.log_lines.append(line.rstrip("\n"))
                if ADDRESS_RE.search(line):
                    self.port = self.fixed_port
                    found.set()

        self._reader = threading.Thread(target=read_log, args=(self.proc,), daemon=True)
        self._reader.start()
        if not found.wait(timeout):
            self.kill()
            raise RuntimeError("server did not start:\n" + "\n".join(self.log_lines))
        return self


class Proc:
    """A worker process with its stderr collected; killed at teardown if still running."""

    def __init__(self, args: List[str], env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.args = args
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=full_env, cwd=cwd, text=True)
        self.stderr: List[str] = []
        self.stdout: List[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, into):
        for line in stream:
            into.append(line.rstrip("\n"))

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker did not exit within {timeout}s:\n" + self.log())
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def stop(self) -> None:
        """End of a test: see ymtest.stop_process (SIGKILL, or a clean stop when measuring
        coverage)."""
        stop_process(self.proc)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def log(self) -> str:
        return "\n".join(self.stderr)


def read_lines(path: str) -> List[str]:
    try:
        with open(path) as f:
            return [line.rstrip("\n") for line in f if line.endswith("\n")]
    except FileNotFoundError:
        return []


def pid_gone(pid: int) -> bool:
    """True when no process `pid` runs any more (a zombie counts as gone: in a container the
    reaper of orphans may be slow or absent, and a zombie runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
