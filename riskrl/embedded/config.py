"""Config plumbing shared by the embedded stages: dict -> dataclass with one-line errors.

Every stage of the embedded backend has one flat config dataclass (``TaskConfig``,
``ModelConfig``, ``SFTConfig``, ``TrainConfig``) whose field names are the keys of its
``params.yaml`` section, so ``from_dict(TrainConfig, params["train"])`` is the whole mapping.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def from_dict(cls: type[T], d: dict[str, Any] | None, *, section: str = "") -> T:
    """Build ``cls`` from ``d``; unknown keys raise one line naming them and the known keys."""
    d = dict(d or {})
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(d) - set(names))
    if unknown:
        where = f" in {section}" if section else ""
        raise ValueError(f"unknown key(s){where}: {', '.join(unknown)}; known: {', '.join(names)}")
    return cls(**d)


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a config dataclass (for ``--help``), read from its source."""
    import ast
    import inspect
    import textwrap

    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    docs = {}
    for a, b in zip(body, body[1:], strict=False):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        ):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def resolve_device(device: str | None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when present, else CPU; anything else is taken literally."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA device; use 'cpu' or 'auto'")
    return torch.device(device)


def set_threads(num_threads: int) -> int:
    """Set torch's intra-op threads (0 = leave torch's default). Returns the count in force.

    On a loaded 2-core machine 2 threads ran 5-40x slower than 1 (the threads wait on each
    other), so every run that shares the machine should ask for 1.
    """
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0, got {num_threads}")
    if num_threads > 0:
        torch.set_num_threads(num_threads)
        os.environ["OMP_NUM_THREADS"] = str(num_threads)  # for child processes
    return torch.get_num_threads()
