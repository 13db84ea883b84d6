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
- ``share=True`` (no address) in a stage that `dvc repro` (or `dvc exp run`) runs: the stages of
  that one DVC process share one local head (:func:`run_head`), started by the first of them and
  stopped as soon as the DVC process exits; outside DVC, or when it cannot start, the stage
  starts a head of its own as above.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
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
    share: bool = False,
) -> Iterator[str]:
    """Yield ``"attached"``, ``"local"``, ``"shared"`` (the DVC run's head, see :func:`run_head`)
    or ``"existing"`` (Ray already initialised here)."""
    address = resolve_address(address)
    env = {**HEAD_ENV, **(env_vars or {})}
    # the run's head is found before Ray is imported: Ray reads the auth mode and token at import
    shared = None
    if share and not gpus and "ray" not in sys.modules and not address:
        shared = run_head(num_cpus, env)
    saved_env = _set_env(shared) if shared is not None else {}
    import ray

    if ray.is_initialized():
        if gpus:
            require_gpus(gpus, what)
        yield "existing"
        return
    if shared is not None:
        # the head of the `dvc repro` that runs this stage: started with this environment (HEAD_ENV too)
        try:
            with _loopback_only():
                ray.init(address=shared["RAY_ADDRESS"], log_to_driver=True)
        except BaseException:
            _set_env(saved_env)
            raise
        mode = "shared"
    elif address and os.environ.get(SAME_HOST_ENV) == "1":
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
        if mode in ("local", "shared"):
            _set_env(saved_env)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def parent_death_signal(sig: int) -> bool:
    """Linux: the kernel sends ``sig`` to this process when its parent dies; whether it was set.
    If the parent has already died, the process exits at once."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    parent = os.getppid()
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the signal was set
        os._exit(1)
    return True


def _sigterm_with_parent() -> None:  # a Popen preexec_fn
    parent_death_signal(signal.SIGTERM)


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

    def __init__(self, num_cpus: int | None = None, ready_timeout_s: float = 300.0,
                 die_with_parent: bool = False) -> None:
        self.num_cpus = num_cpus or os.cpu_count() or 1
        self.ready_timeout_s = ready_timeout_s
        self.die_with_parent = die_with_parent  # Linux: SIGTERM the head when the process that started it dies
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
                                     start_new_session=True, bufsize=0,
                                     preexec_fn=_sigterm_with_parent if self.die_with_parent else None)
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


# --- one head for the stages of one `dvc repro` ----------------------------------------------------

SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "fish"}
RUN_HEADS = "riskrl-ray-heads"  # folder of the run heads' state, in the temp dir (one per user)


def _is_dvc(argv: list[str]) -> bool:
    return any(Path(a).name == "dvc" for a in argv[:2]) or argv[1:3] == ["-m", "dvc"]


def repro_owner() -> tuple[int, float] | None:
    """The DVC process (`dvc repro`, `dvc exp run`) whose stage command this process is, as (pid,
    start time), or None: not a stage command (no ``$DVC_STAGE``), or no DVC process above it (its
    shells skipped)."""
    if not os.environ.get("DVC_STAGE"):
        return None
    try:
        import psutil

        for proc in psutil.Process().parents():
            if proc.name() in SHELLS:
                continue
            return (proc.pid, proc.create_time()) if _is_dvc(proc.cmdline()) else None
    except Exception:  # psutil missing, or a process gone or not ours: no sharing
        return None
    return None


def _owner_alive(pid: int, started: float) -> bool:
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - started) < 1e-3
    except psutil.Error:
        return False


def _alive(pid: int) -> bool:
    """The process runs (a zombie, killed but not yet reaped, does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def run_head(num_cpus: int | None, env: dict[str, str], ready_timeout_s: float = 300.0) -> dict[str, str] | None:
    """The environment that attaches to the local head shared by the stages of the `dvc repro` that
    runs this process (as :meth:`LocalHead.env`), starting it if this is the first of them; None when
    this process is not a DVC stage command or the head cannot be started (a warning line: the stage
    then starts a head of its own).

    The head is kept by a small keeper process (``python -m riskrl.cluster``, a session of its own):
    it starts a :class:`LocalHead` with this process's environment (``$DVC_STAGE`` aside) and
    ``env``, writes the head's address and token to a file only this user can read, and stops the
    head as soon as the DVC process exits (killed included); the head gets SIGTERM if the keeper
    itself is killed. Stages whose environment, directory, interpreter or CPUs differ get heads of
    their own. Ray starts fresh workers for every stage (a job each), so each stage runs the code on
    disk at its start, as with a head of its own.
    """
    owner = repro_owner()
    if owner is None:
        return None
    import fcntl

    keeper_env = {k: v for k, v in os.environ.items() if k not in ("DVC_STAGE", "RAY_ADDRESS", SAME_HOST_ENV)}
    keeper_env.update(env)
    cpus = num_cpus or os.cpu_count() or 1
    owner_arg = f"{owner[0]}:{owner[1]!r}"
    key = json.dumps([owner, os.getcwd(), sys.executable, cpus, sorted(keeper_env.items())])
    root = Path(tempfile.gettempdir(), f"{RUN_HEADS}-{getattr(os, 'getuid', lambda: 0)()}")
    _sweep(root)
    state = root / hashlib.sha256(key.encode()).hexdigest()[:16]
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    (state / "owner").write_text(owner_arg)
    info_file, failed_file = state / "head.json", state / "failed"
    with open(state / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one stage starts the keeper; the others wait for its head
        info = json.loads(info_file.read_text()) if info_file.is_file() else None
        if info is not None and not _alive(info["keeper"]):  # its keeper was killed: start anew
            info_file.unlink(missing_ok=True)
            info = None
        if info is None and not failed_file.is_file():
            keeper = subprocess.Popen(
                [sys.executable, "-m", "riskrl.cluster", "--state", str(state), "--owner", owner_arg,
                 "--num-cpus", str(cpus), "--ready-timeout", f"{ready_timeout_s:g}"],
                env=keeper_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            deadline = time.monotonic() + ready_timeout_s + 30
            while not info_file.is_file() and not failed_file.is_file():
                if keeper.poll() is not None:
                    failed_file.write_text(f"its keeper exited (code {keeper.returncode}) before the head served")
                elif time.monotonic() > deadline:
                    keeper.kill()
                    failed_file.write_text(f"it did not start within {ready_timeout_s + 30:g}s")
                time.sleep(0.05)
            info = json.loads(info_file.read_text()) if info_file.is_file() else None
        if info is None:
            why = " ".join(failed_file.read_text().split()) if failed_file.is_file() else "no head"
            print(f"WARNING: the local Ray head shared by this dvc run is not available ({why}); "
                  "this stage starts a head of its own", file=sys.stderr, flush=True)
            return None
    return info["env"]


def _sweep(root: Path) -> None:
    """Remove the state of run heads whose DVC process has exited and whose keeper is gone."""
    import shutil

    for owner_file in root.glob("*/owner"):
        try:
            pid, started = owner_file.read_text().split(":", 1)
            if _owner_alive(int(pid), float(started)):
                continue
            info_file = owner_file.parent / "head.json"
            info = json.loads(info_file.read_text()) if info_file.is_file() else {}
            if info and _alive(info["keeper"]):
                continue  # its keeper is stopping it
            if info.get("temp_dir"):  # a killed keeper's head stopped (SIGTERM) but left its temp dir
                shutil.rmtree(info["temp_dir"], ignore_errors=True)
            shutil.rmtree(owner_file.parent, ignore_errors=True)
        except (OSError, ValueError, KeyError):
            continue


def _keep(state: Path, owner_pid: int, owner_started: float, num_cpus: int, ready_timeout_s: float) -> int:
    """The keeper of a run head (see :func:`run_head`): start it, publish how to attach, and stop it
    when the DVC process ``owner_pid`` (started at ``owner_started``) has exited or the head has died."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    head = LocalHead(num_cpus, ready_timeout_s=ready_timeout_s, die_with_parent=True)
    try:
        head.start()
        try:
            env = head.env()
        except ClusterError as err:
            (state / "failed").write_text(str(err))
            return 1
        tmp = state / "head.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the token: this user only
        with os.fdopen(fd, "w") as fh:
            json.dump({"env": env, "keeper": os.getpid(), "temp_dir": head.temp_dir}, fh)
        os.replace(tmp, state / "head.json")
        while not stop and _owner_alive(owner_pid, owner_started) and head.proc is not None \
                and head.proc.poll() is None:
            time.sleep(0.1)
        return 0
    finally:
        (state / "head.json").unlink(missing_ok=True)  # no stage attaches to a head that is stopping
        head.stop()
        if not (state / "failed").is_file():  # a failure stays for the run's later stages to see
            import shutil

            shutil.rmtree(state, ignore_errors=True)


def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Keep the local Ray head of one `dvc repro` (started by riskrl's stages).")
    ap.add_argument("--state", required=True, type=Path)
    ap.add_argument("--owner", required=True, help="PID:START_TIME of the DVC process")
    ap.add_argument("--num-cpus", type=int, required=True)
    ap.add_argument("--ready-timeout", type=float, default=300.0)
    a = ap.parse_args(argv)
    pid, started = a.owner.split(":", 1)
    return _keep(a.state, int(pid), float(started), a.num_cpus, a.ready_timeout)


if __name__ == "__main__":
    sys.exit(_main())
