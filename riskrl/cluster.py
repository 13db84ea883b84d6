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
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
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
    env = {"TOKENIZERS_PARALLELISM": "false", **(env_vars or {})}
    if address:
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


def _set_env(values: dict[str, str | None]) -> dict[str, str | None]:
    """Set (None: unset) environment variables; returns their previous values."""
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    return old
