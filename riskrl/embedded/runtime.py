"""Where and how an embedded stage computes: the torch device and the intra-op thread count.

(The stages' config dataclasses live in ``riskrl.embedded.configs``.)
"""

from __future__ import annotations

import os

import torch


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
