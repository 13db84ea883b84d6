"""Training checkpoints: ``checkpoints/step_N/`` = model (save_pretrained), optimizer, state.

``state.pt`` holds the step, the RiskPO quantile tracker, the global RNG states, the metric
rows so far and the config. Each step directory is written whole or not at all
(``riskrl.io.atomic_path``), so a run killed mid-save resumes from the previous checkpoint.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from riskrl.embedded.model import save_pretrained
from riskrl.io import atomic_path

_STEP_DIR = re.compile(r"^step_(\d+)$")


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    ckpt_root: str | os.PathLike,
    step: int,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
) -> Path:
    """Write ``ckpt_root/step_{step}`` atomically; returns its path."""
    path = Path(ckpt_root) / f"step_{step}"
    with atomic_path(path, is_dir=True) as tmp:
        save_pretrained(model, tokenizer, tmp / "model")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save({**state, "step": step, "rng": rng_state()}, tmp / "state.pt")
    return path


def latest_checkpoint(ckpt_root: str | os.PathLike) -> Path | None:
    """The complete ``step_N`` directory with the largest N, or None."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return None
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _STEP_DIR.match(p.name)) and (p / "state.pt").is_file() and (p / "optimizer.pt").is_file()
    ]
    return max(found)[1] if found else None


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    return torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=False)


def prune_checkpoints(ckpt_root: str | os.PathLike, keep: int) -> None:
    """Keep the ``keep`` newest step directories (0 = keep all)."""
    if keep <= 0:
        return
    import shutil

    root = Path(ckpt_root)
    steps = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)))
    for _, p in steps[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
