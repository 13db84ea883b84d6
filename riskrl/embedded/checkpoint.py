"""Training checkpoints: ``checkpoints/step_N/`` = model (save_pretrained), optimizer, state.

Nothing in a checkpoint is unpickled: checkpoints travel between people (``dvc push``/``pull``)
and a pickle can run code. A step directory holds

    model/              save_pretrained (safetensors + JSON)
    optimizer.pt        the optimizer's state dict, loaded with ``torch.load(weights_only=True)``
    state.json          step, metric rows, config, its hash, python/numpy RNG states, tracker scalars
    tensors.pt          torch RNG states and the RiskPO tracker's tensors (``weights_only=True``)
    timing.json         wall-clock rows (not part of the run's deterministic outputs)

Each step directory is written whole or not at all (``riskrl.io.atomic_path``), so a run
killed mid-save resumes from the previous checkpoint; ``clean_partial`` removes the temporary
``.step_N.*.tmp`` folders such a kill leaves. ``load_newest`` skips an unreadable newest
checkpoint with one warning line and uses the previous one. A ``state.pt`` written by older
riskrl (a pickle) is refused with one line naming it and the way out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from riskrl.io import atomic_path, torch_bytes, write_bytes, write_json

if TYPE_CHECKING:
    import torch

# torch and transformers are imported where a checkpoint is written or read: a stage's driver
# only plans resumes (config_hash, checkpoint_hash) and must not pay seconds of imports for it

logger = logging.getLogger("riskrl.checkpoint")

_STEP_DIR = re.compile(r"^step_(\d+)$")
_PARTIAL = re.compile(r"^\.step_\d+\..*\.(tmp|old)$|^\.step_\d+\.old$")
STATE_FILE, TENSORS_FILE, OPTIM_FILE, TIMING_FILE, LEGACY_STATE = (
    "state.json", "tensors.pt", "optimizer.pt", "timing.json", "state.pt")

# config fields that do not change what a run computes (they may differ between a run and its resume)
NOT_HASHED = frozenset({"out", "progress", "resume", "steps", "save_every", "keep_checkpoints", "tensorboard",
                        "num_threads", "device"})


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message is one line naming the file."""


def rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON-able python/numpy states, torch tensors)."""
    import torch

    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    plain = {"python": [version, list(internal), gauss],
             "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    return plain, tensors


def set_rng_state(plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    import torch

    version, internal, gauss = plain["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng/cuda/"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _file_digest(h: Any, path: Path) -> None:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the fields that decide what a run computes, and of the contents of its start model
    and data (a retrained base under the same path is another run)."""
    h = hashlib.sha256()
    h.update(json.dumps({k: v for k, v in config.items() if k not in NOT_HASHED}, sort_keys=True,
                        default=str).encode())
    for key in ("model", "data"):
        p = Path(str(config.get(key) or ""))
        if config.get(key) and p.exists():
            _file_digest(h, p)
    return h.hexdigest()[:16]


def _split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested dict by ``{"__tensor__": key}``; collect them in ``tensors``."""
    import torch

    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {k: _split_tensors(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
    return obj


def _join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        return {k: _join_tensors(v, tensors) for k, v in obj.items()}
    return obj


def save_checkpoint(
    ckpt_root: str | os.PathLike,
    step: int,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
) -> Path:
    """Write ``ckpt_root/step_{step}`` atomically; returns its path.

    ``state``: ``metrics`` (rows), ``timing`` (rows), ``config`` (dict), ``tracker`` (state dict or None).
    """
    path = Path(ckpt_root) / f"step_{step}"
    state = dict(state)
    timing = state.pop("timing", [])
    plain_rng, tensors = rng_state()
    body = _split_tensors({k: v for k, v in state.items()}, "state", tensors)
    body.update(step=step, rng=plain_rng)
    body.setdefault("config_hash", config_hash(state.get("config") or {}))
    with atomic_path(path, is_dir=True) as tmp:
        from riskrl.embedded.model import save_pretrained

        save_pretrained(model, tokenizer, tmp / "model")
        write_bytes(tmp / OPTIM_FILE, torch_bytes(optimizer.state_dict()))
        write_bytes(tmp / TENSORS_FILE, torch_bytes(tensors))
        write_json(tmp / STATE_FILE, body)
        write_json(tmp / TIMING_FILE, timing)
    return path


def _steps(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    return sorted(((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()),
                  reverse=True)


def latest_checkpoint(ckpt_root: str | os.PathLike) -> Path | None:
    """The ``step_N`` directory with the largest N that has its state and optimizer files, or None."""
    for _, p in _steps(Path(ckpt_root)):
        if ((p / STATE_FILE).is_file() or (p / LEGACY_STATE).is_file()) and (p / OPTIM_FILE).is_file():
            return p
    return None


def checkpoint_hash(ckpt_root: str | os.PathLike) -> tuple[Path, str | None] | None:
    """(step dir, its config hash) of the newest checkpoint whose state.json reads; hash None for a
    checkpoint of an older riskrl (pickled ``state.pt``); None when there is no checkpoint."""
    for _, p in _steps(Path(ckpt_root)):
        try:
            return p, json.loads((p / STATE_FILE).read_text(encoding="utf-8"))["config_hash"]
        except (OSError, ValueError, KeyError, TypeError):
            if (p / LEGACY_STATE).is_file():
                return p, None
    return None


def clean_partial(ckpt_root: str | os.PathLike) -> list[Path]:
    """Remove the ``.step_N.*.tmp`` / ``.step_N.old`` folders an interrupted save left; returns them."""
    root = Path(ckpt_root)
    gone = [p for p in root.iterdir() if _PARTIAL.match(p.name)] if root.is_dir() else []
    for p in gone:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    return gone


def _safe_torch_load(path: Path, map_location: Any = "cpu") -> Any:
    import pickle

    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: refused, not a plain tensor file ({first[:160]})") from None


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """The state of the checkpoint at ``path``: step, metrics, timing, config, config_hash, tracker, rng.

    Raises ``CheckpointError`` (one line) for a legacy pickled ``state.pt``, a file that is not
    plain tensors (a pickle that would run code), or a missing/corrupt file.
    """
    import torch

    path = Path(path)
    if not (path / STATE_FILE).is_file():
        if (path / LEGACY_STATE).is_file():
            raise CheckpointError(
                f"{path / LEGACY_STATE}: a checkpoint of an older riskrl (a pickle, which riskrl no longer "
                f"loads because it can run code); delete {path.parent} to train this run afresh"
            )
        raise CheckpointError(f"{path}: no {STATE_FILE}")
    try:
        body = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path / STATE_FILE}: unreadable ({type(err).__name__}: {err})") from None
    tensors = _safe_torch_load(path / TENSORS_FILE)
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise CheckpointError(f"{path / TENSORS_FILE}: expected a dict of tensors")
    state = _join_tensors({k: v for k, v in body.items() if k != "rng"}, tensors)
    state["rng"] = (body["rng"], tensors)
    try:
        state["timing"] = json.loads((path / TIMING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state["timing"] = []  # wall-clock rows are not needed to resume exactly
    return state


def load_optimizer_state(path: str | os.PathLike, device: Any = "cpu") -> dict[str, Any]:
    return _safe_torch_load(Path(path) / OPTIM_FILE, map_location=device)


@dataclass
class Resumed:
    path: Path
    state: dict[str, Any]
    optimizer: dict[str, Any]
    model: Any
    tokenizer: Any


def load_newest(ckpt_root: str | os.PathLike, device: Any, max_step: int | None = None) -> Resumed | None:
    """The newest checkpoint that loads whole (state, optimizer, model); an unreadable one is skipped
    with one warning line naming it. A refused file (legacy or unsafe pickle) stops with its
    ``CheckpointError``: it is never skipped silently."""
    from riskrl.embedded.model import load_pretrained

    skipped: list[tuple[Path, str]] = []
    for step, p in _steps(Path(ckpt_root)):
        if max_step is not None and step > max_step:
            continue
        try:
            state = load_state(p)
            optim = load_optimizer_state(p, device)
            model, tokenizer = load_pretrained(p / "model", device)
        except CheckpointError as err:
            if "refused" in str(err) or "older riskrl" in str(err):
                raise
            skipped.append((p, str(err)))
        except Exception as err:  # noqa: BLE001 - a truncated file raises anything from EOFError to SafetensorError
            skipped.append((p, f"{type(err).__name__}: {' '.join(str(err).split())[:160]}"))
        else:
            for bad, reason in skipped:
                logger.warning("skipping unreadable checkpoint %s (%s); resuming from %s", bad, reason, p.name)
            return Resumed(p, state, optim, model, tokenizer)
    for bad, reason in skipped:
        logger.warning("skipping unreadable checkpoint %s (%s); no intact one left, starting afresh", bad, reason)
    return None


def prune_checkpoints(ckpt_root: str | os.PathLike, keep: int) -> None:
    """Keep the ``keep`` newest step directories (0 = keep all)."""
    if keep <= 0:
        return
    for _, p in _steps(Path(ckpt_root))[keep:]:
        shutil.rmtree(p, ignore_errors=True)


__all__ = ["CheckpointError", "Resumed", "checkpoint_hash", "clean_partial", "config_hash", "latest_checkpoint", "load_newest",
           "load_optimizer_state", "load_state", "prune_checkpoints", "rng_state", "save_checkpoint",
           "set_rng_state"]
