"""Worker processes that run math-verify for callers outside the main thread.

math-verify bounds its time with ``signal.alarm``, which only works in a process's main thread,
and a Python thread cannot be interrupted. So a non-main-thread caller sends ``(gold, pred)``
as one JSON line to a worker process (``python -m riskrl.rewards._worker``), whose main thread
compares them under a ``SIGALRM`` deadline and answers one JSON line. The parent waits at most
``timeout_s + GRACE_S`` and kills a worker that overruns, so a call is bounded even if the
worker hangs inside C code.

Plain subprocesses (not ``multiprocessing``) are used on purpose: they never re-import the
caller's ``__main__`` (no ``if __name__ == "__main__"`` guard needed), start the same way from
any thread, Ray worker or forked process, and exit on their own when the parent's pipe closes.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

GRACE_S = 2.0  # parent-side slack over the worker's own deadline
START_TIMEOUT_S = 60.0  # importing sympy + math-verify in a fresh interpreter
MAX_WORKERS = int(os.environ.get("RISKRL_REWARD_WORKERS", str(min(4, os.cpu_count() or 1))))


WORKER_COMMAND = [sys.executable, "-m", "riskrl.rewards._worker"]


class _Worker:
    def __init__(self, command: list[str]) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the directory holding riskrl/
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
        )
        if self._readline(time.monotonic() + START_TIMEOUT_S) != b"ready":
            self.kill()
            raise RuntimeError("riskrl reward worker did not start (python -m riskrl.rewards._worker)")

    def _readline(self, deadline: float) -> bytes | None:
        fd, buf = self.proc.stdout.fileno(), b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # EOF: the worker died
                return None
            buf += chunk
        return buf.strip()

    def ask(self, request: dict, wait_s: float) -> dict | None:
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        except (BrokenPipeError, OSError):
            return None
        line = self._readline(time.monotonic() + wait_s)
        return json.loads(line) if line else None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class WorkerPool:
    """At most ``max_workers`` worker processes, started lazily and reused; thread-safe."""

    def __init__(
        self, max_workers: int = MAX_WORKERS, command: list[str] | None = None, grace_s: float = GRACE_S
    ) -> None:
        self.max_workers = max(1, max_workers)
        self.command = command or WORKER_COMMAND
        self.grace_s = grace_s
        self._slots = threading.BoundedSemaphore(self.max_workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self.pid = os.getpid()

    def verify(self, gold: str, pred: str, *, timeout_s: float) -> bool:
        """math-verify ``gold`` vs ``pred`` in a worker; False on timeout or a crashed worker."""
        with self._slots:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = _Worker(self.command)
            reply = worker.ask({"gold": gold, "pred": pred, "timeout_s": timeout_s}, timeout_s + self.grace_s)
            if reply is None:  # overran or died: never reuse it
                worker.kill()
                return False
            with self._lock:
                self._idle.append(worker)
            return bool(reply.get("acc", False))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> WorkerPool:
    """The process-wide pool (a fresh one after ``fork``: pipes are not shared with a parent)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = WorkerPool()
        return _POOL


@atexit.register
def _close_pool() -> None:
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()
