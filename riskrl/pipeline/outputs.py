"""Check before you delete; write beside, swap at the end.

A stage that fails must leave its previous outputs exactly as they were. Stages therefore

1. run ``preflight(...)`` checks first (params are already valid): inputs exist and are readable
   (a truncated parquet fails here, not inside a Ray task), the backend is possible on this
   machine, the Ray cluster answers; each check raises one line naming the problem;
2. write a directory output through ``staged_output(path)``: a sibling ``.<name>.staging`` folder
   that replaces ``path`` only when the block completes (a failure removes the staging folder and
   leaves ``path`` untouched; a leftover one from a killed run is removed on the next start);
3. ``train`` is the exception: its runs are written in place so that a killed stage resumes from
   each run's newest intact checkpoint (``plan_resume``); runs that left the grid are removed
   only after every run of the grid finished (``remove_stale``).

dvc.yaml marks ``runs/<estimator>`` and the uncached metrics/plots ``persist: true``, so DVC does
not delete them before the stage runs either (cached outputs it deletes can be restored with
``dvc checkout``; uncached ones could not).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from riskrl.pipeline.stage import StageError

logger = logging.getLogger("riskrl.stage")


def preflight(*checks: Callable[[], Any]) -> None:
    """Run every check in order; the first failure stops the stage before anything is touched."""
    for check in checks:
        check()


def staging_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.staging")


@contextlib.contextmanager
def staged_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty sibling staging directory; on success it replaces ``path`` (old contents go),
    on any failure (Ctrl-C included) it is removed and ``path`` stays as it was."""
    path = Path(path)
    stage = staging_path(path)
    old = path.with_name(f".{path.name}.old")
    for leftover in (stage, old):
        shutil.rmtree(leftover, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if path.exists():
        os.replace(path, old)
    os.replace(stage, path)
    shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------- checks

def check_parquet(path: str | os.PathLike, what: str, hint: str = "run the prepare stage again") -> None:
    """The file exists and reads whole as parquet (footer, schema and every row group)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise StageError(f"{what} {path} is missing; {hint}")
    try:
        pf = pq.ParquetFile(path)
        for i in range(pf.num_row_groups):
            pf.read_row_group(i)
    except Exception as err:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ...
        raise StageError(f"{what} {path} is not readable parquet ({' '.join(str(err).split())[:200]}); "
                         f"{hint}") from None


def check_model(path: str | os.PathLike, hint: str) -> None:
    """A saved model directory: config.json and a weights file whose safetensors header reads."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise StageError(f"no model at {path} (config.json missing); {hint}")
    weights = path / "model.safetensors"
    if weights.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(weights), framework="numpy") as f:  # numpy: the header alone, no torch import
                list(f.keys())
        except Exception as err:  # noqa: BLE001
            raise StageError(f"model weights {weights} are not readable ({type(err).__name__}: {err}); {hint}") \
                from None


def check_cluster(p: Any) -> None:
    """A given Ray address (params or ``$RAY_ADDRESS``) answers, before any output is touched."""
    from riskrl.cluster import check_reachable, resolve_address

    address = resolve_address(p.cluster.address)
    if address:
        check_reachable(address, p.cluster.connect_timeout_s)


def check_backend(p: Any, what: str) -> None:
    """backend verl needs GPUs: with no cluster address, this machine must have CUDA (or the Ray
    session this process already runs must declare GPUs)."""
    if p.backend != "verl":
        return
    from riskrl.cluster import resolve_address

    if resolve_address(p.cluster.address):
        return  # the cluster's GPUs are checked once attached
    import sys

    import torch

    ray = sys.modules.get("ray")  # a Ray session already open in this process brings its own GPUs
    if ray is not None and ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0:
        return
    if not torch.cuda.is_available():
        raise StageError(f"{what} with backend: verl needs GPUs, and this machine has none and no "
                         "cluster.address is set; on a CPU machine use backend: embedded in params.yaml")


# ---------------------------------------------------------------------------------- train runs

def plan_resume(configs: Iterable[Any]) -> list[Any]:
    """Resume is the default: each run continues from its newest checkpoint when the run's
    configuration hash (and its start model and data) is unchanged; otherwise it starts afresh and
    says so. Returns the configs with ``resume`` set."""
    from riskrl.embedded.checkpoint import checkpoint_hash, config_hash
    from riskrl.embedded.configs import to_dict

    out = []
    for cfg in configs:
        ckpts = Path(cfg.out) / "checkpoints"
        found = checkpoint_hash(ckpts)
        resume = False
        if found is not None:
            step_dir, old = found
            new = config_hash(to_dict(cfg))
            if old == new:
                resume = True
                logger.info("%s: resuming from %s", cfg.out, step_dir.name)
            else:
                why = "written by an older riskrl" if old is None else f"configuration changed ({old} -> {new})"
                logger.warning("%s: checkpoints %s; training afresh", cfg.out, why)
        out.append(dataclasses.replace(cfg, resume=resume))
    return out


def remove_stale(root: str | os.PathLike, keep: Iterable[str]) -> list[Path]:
    """After a complete grid: remove run folders of ``root`` that are not in ``keep``."""
    root, keep = Path(root), set(keep)
    gone = [d for d in root.iterdir() if d.name not in keep] if root.is_dir() else []
    for d in gone:
        shutil.rmtree(d) if d.is_dir() else d.unlink()
    return gone
