"""Ray for the pipeline's compute: attach to a cluster, or start a local head and stop it.

``ray_session(address)`` is the one place the pipeline meets Ray:

- ``address`` (or ``$RAY_ADDRESS``) given: attach to that cluster after a short TCP check, so
  an unreachable address fails in one line instead of Ray's long retry loop; the project
  (this repository, without data, caches and the venv) and its params travel as the job's
  ``runtime_env`` working dir, so workers run the same code.
- no address: start a local head with this machine's CPUs on the loopback address (node IP
  127.0.0.1, dashboard off), and shut it down when the block ends. For a real cluster start the
  head yourself (``ray start --head --node-ip-address <ip> --include-dashboard true``) and set
  ``cluster.address``.
- ``gpus`` > 0: the cluster must have that many GPUs, else one line saying so (and pointing
  to the embedded backend).
- ``$RISKRL_RAY_SAME_HOST=1`` with ``$RAY_ADDRESS``: the cluster is a :class:`LocalHead` of this
  machine, with this code and environment (the Prefect flow starts one for all its stages, so
  each stage attaches in about a second instead of starting and stopping a head of its own);
  nothing is shipped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_EXCLUDES = [
    ".venv",
    ".git",
    ".dvc/cache",
    ".dvc/tmp",
    "data",
    "models",
    "runs",
    "reports",
    "outputs",
    "**/__pycache__",
    "*.parquet",
    "*.pt",
    "*.safetensors",
]


LOCAL_HEAD_IP = "127.0.0.1"
SAME_HOST_ENV = "RISKRL_RAY_SAME_HOST"  # "1": the cluster at RAY_ADDRESS is a LocalHead of this machine
HEAD_ENV = {"TOKENIZERS_PARALLELISM": "false"}  # what every head's processes (and a job's runtime_env) get


class ClusterError(RuntimeError):
    """Ray cluster problem, as one line."""


class ClusterUnreachable(ClusterError, ConnectionError):
    """No Ray cluster answers at the address (also a ``ConnectionError``)."""


class BadRayAddress(ClusterError, ValueError):
    """The address is not host:port, ray://host:port or auto (also a ``ValueError``)."""


def resolve_address(address: str | None) -> str | None:
    addr = address or os.environ.get("RAY_ADDRESS") or None
    return None if addr in ("", "local", None) else addr


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """TCP connect to ``host:port`` (also ``ray://host:port``); one line if it fails."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise BadRayAddress(f"ray address must be host:port, ray://host:port or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ClusterUnreachable(
            f"cannot reach the Ray cluster at {address} within {timeout_s:g}s ({err.strerror or err})"
        ) from None


def cluster_gpus() -> float:
    import ray

    return float(ray.cluster_resources().get("GPU", 0))


def require_gpus(gpus: float, what: str = "this stage") -> None:
    have = cluster_gpus()
    if have < gpus:
        raise ClusterError(
            f"{what} needs {gpus:g} GPU(s) but the Ray cluster has {have:g}; "
            "on a CPU machine use backend: embedded in params.yaml"
        )


@contextlib.contextmanager
def _attach_quietly(timeout_s: float) -> Iterator[None]:
    """While attaching: Ray's GCS client retries about once a second and logs each failure from C++
    straight to fd 2 (20 lines for an address where something else answers). Retry for about
    ``timeout_s``, hold fd 2's output back, and replay it only if the attach succeeds."""
    import tempfile

    from ray._private import ray_constants

    old_retries = ray_constants.NUM_REDIS_GET_RETRIES
    ray_constants.NUM_REDIS_GET_RETRIES = max(1, int(timeout_s))
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            ray_constants.NUM_REDIS_GET_RETRIES = old_retries
            if ok:
                held.seek(0)
                sys.stderr.write(held.read().decode(errors="replace"))


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """While a local head starts: Ray resolves 127.0.0.1 to the machine's routable IP unless its
    "local-only" switch (the one it uses on macOS/Windows) is on; the head's processes inherit it."""
    from ray._private import ray_constants

    var = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    old_env, old_flag = os.environ.get(var), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[var], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old_env


@contextlib.contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    gpus: float = 0,
    connect_timeout_s: float = 10.0,
    env_vars: dict[str, str] | None = None,
    what: str = "this stage",
) -> Iterator[str]:
    """Yield ``"attached"``, ``"local"`` or ``"existing"`` (Ray already initialised here)."""
    import ray

    if ray.is_initialized():
        if gpus:
            require_gpus(gpus, what)
        yield "existing"
        return
    address = resolve_address(address)
    env = {**HEAD_ENV, **(env_vars or {})}
    if address and os.environ.get(SAME_HOST_ENV) == "1":
        # a LocalHead of this machine: same code, same venv, its processes already have HEAD_ENV
        check_reachable(address, connect_timeout_s)
        with _loopback_only():
            ray.init(address=address, log_to_driver=True)
        mode = "attached"
    elif address:
        check_reachable(address, connect_timeout_s)
        runtime_env = {"working_dir": str(ROOT), "excludes": RUNTIME_EXCLUDES, "env_vars": env}
        try:
            with _attach_quietly(connect_timeout_s):
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ClusterUnreachable(
                f"cannot attach to the Ray cluster at {address} (something answers there, but not a Ray "
                f"GCS within {connect_timeout_s:g}s): {str(err).splitlines()[0]}"
            ) from None
        mode = "attached"
    else:
        # address="local": always a new head, never a `ray start` cluster found through its session file.
        # The env goes to the head's processes as their environment, not as a runtime_env: workers
        # with a runtime_env cannot be the ones Ray prestarts at init, and two more would start
        saved_env = _set_env(env)
        try:
            with _loopback_only():
                ray.init(
                    address="local",
                    num_cpus=num_cpus or os.cpu_count(),
                    _node_ip_address=LOCAL_HEAD_IP,  # loopback: the node IP every process advertises and dials
                    include_dashboard=False,
                    log_to_driver=True,
                )
        except BaseException:
            _set_env(saved_env)
            raise
        mode = "local"
    try:
        if gpus:
            require_gpus(gpus, what)
        yield mode
    finally:
        ray.shutdown()
        if mode == "local":
            _set_env(saved_env)


def enter_driver_cwd(cwd: str | None) -> None:
    """In a Ray task: work in the driver's directory ``cwd`` when this machine has it. A stage's
    paths (models/base, runs/<variant>/...) are relative to its workspace; workers of a stage's own
    local head start there, but those of a head shared by several stages (the Prefect flow's, one
    per flow run) start where the head did."""
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)


def _set_env(values: dict[str, str | None]) -> dict[str, str | None]:
    """Set (None: unset) environment variables; returns their previous values."""
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    return old


class LocalHead:
    """A Ray head on the loopback address that several stage processes share.

    ``ray start --head --block`` in a process group of its own (dashboard off, node IP 127.0.0.1,
    a temp dir of its own, Ray's token auth with a fresh token), started by :meth:`start` without
    waiting. :meth:`env` waits until it serves and returns the variables that make
    :func:`ray_session` in a child process attach to it (``RAY_ADDRESS``,
    ``RISKRL_RAY_SAME_HOST=1``, the token); if the head did not come up in time, or has died since,
    it raises :class:`ClusterError` (one line) every time it is asked, and the caller runs without
    it. :meth:`stop` ends the head and everything it started (a context manager stops it too).
    """

    def __init__(self, num_cpus: int | None = None, ready_timeout_s: float = 300.0) -> None:
        self.num_cpus = num_cpus or os.cpu_count() or 1
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None
        self.address: str | None = None
        self.temp_dir: str | None = None
        self.auth: dict[str, str] = {}
        self.failed: str | None = None  # why it cannot be used (set once)
        self._ready = False
        self._stopping = False

    def start(self) -> LocalHead:
        import secrets

        from ray._private import ray_constants

        with socket.socket() as s:
            s.bind((LOCAL_HEAD_IP, 0))
            port = s.getsockname()[1]
        self.temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # Ray's socket paths have a length limit
        ray_bin = Path(sys.executable).with_name("ray")
        cmd = [str(ray_bin) if ray_bin.exists() else "ray", "start", "--head", "--block", f"--port={port}",
               f"--node-ip-address={LOCAL_HEAD_IP}", f"--num-cpus={self.num_cpus}", "--num-gpus=0",
               "--include-dashboard=false", f"--temp-dir={self.temp_dir}", "--disable-usage-stats"]
        # Ray's token auth (what `ray start` asks for): only processes given the token can attach
        self.auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        env = {**os.environ, **HEAD_ENV, **self.auth, ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR: "0",
               "PYTHONUNBUFFERED": "1"}  # unbuffered: its "started" line must reach the pipe at once
        env.pop("RAY_ADDRESS", None)
        # bufsize=0: a raw pipe, so that select() below sees every line (a buffered reader can hold
        # the "started" line in its buffer while select() waits on the empty pipe)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True, bufsize=0)
        self.address = f"{LOCAL_HEAD_IP}:{port}"
        return self

    def env(self) -> dict[str, str]:
        """The environment of a stage process that should use this head (waits until it serves)."""
        self.wait_ready()
        from ray._private import ray_constants

        return {"RAY_ADDRESS": str(self.address), SAME_HOST_ENV: "1", ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR: "0",
                **self.auth}

    def _fail(self, why: str) -> None:
        self.failed = why
        self.stop()
        raise ClusterError(why)

    def wait_ready(self) -> None:
        """Until `ray start` says the runtime started (the node is registered); ClusterError (one
        line) if it does not within ``ready_timeout_s``, exits, was stopped or has died since."""
        if self.failed:
            raise ClusterError(self.failed)
        if self.proc is None:
            raise ClusterError(f"the local Ray head at {self.address} is not running (never started, or stopped)")
        if self._ready:
            if self.proc.poll() is not None:
                self._fail(f"the local Ray head at {self.address} has exited (code {self.proc.returncode})")
            return
        assert self.proc.stdout is not None
        import select
        import threading

        deadline = time.monotonic() + self.ready_timeout_s
        out: list[str] = []
        while not any("Ray runtime started" in line for line in out):
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"the local Ray head at {self.address} did not start within {self.ready_timeout_s:g}s")
            if select.select([self.proc.stdout], [], [], min(left, 1.0))[0]:
                line = self.proc.stdout.readline().decode(errors="replace")
                if not line and self.proc.poll() is not None:
                    tail = " ".join(" ".join(out).split())[-300:] or "no output"
                    self._fail(f"the local Ray head exited before it served: {tail}")
                out.append(line)
        self._ready = True
        # keep reading what it prints later, so a full pipe never blocks it
        threading.Thread(target=lambda f=self.proc.stdout: [None for _ in iter(f.readline, b"")],
                         daemon=True).start()

    def begin_stop(self) -> None:
        """Ask the head to stop (it takes about 2 s) without waiting; :meth:`stop` finishes."""
        if self.proc is not None and self.proc.poll() is None and not self._stopping:
            self.proc.send_signal(signal.SIGTERM)  # `ray start --block` stops the head's processes
            self._stopping = True

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.begin_stop()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever the session left behind
        self.proc.wait()
        self.proc, self._stopping = None, False
        import shutil

        shutil.rmtree(self.temp_dir or "", ignore_errors=True)

    def __enter__(self) -> LocalHead:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
