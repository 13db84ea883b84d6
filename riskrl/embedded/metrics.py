"""Per-step training logs: a CSV that DVC plots, a TensorBoard directory, and a timing CSV.

``train_metrics.csv`` holds only quantities that are a deterministic function of the run
(seed, config), so an interrupted-and-resumed run writes exactly the same file as an
uninterrupted one; wall-clock figures go to ``train_timing.csv`` and TensorBoard ``time/*``.
Both CSVs are rewritten atomically after every step (a few hundred rows at most).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from riskrl.io import write_text


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    s = str(v)
    return f'"{s}"' if ("," in s or '"' in s) else s


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text; columns in first-seen order over all rows, missing cells left empty."""
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    lines = [",".join(cols)] + [",".join(_fmt(r.get(c)) for c in cols) for r in rows]
    return "\n".join(lines) + "\n"


class MetricsLog:
    """Accumulates metric rows and mirrors them to CSV files and TensorBoard."""

    def __init__(
        self,
        out: str | os.PathLike,
        rows: list[dict[str, Any]] | None = None,
        timing: list[dict[str, Any]] | None = None,
        tensorboard: bool = True,
    ) -> None:
        self.out = Path(out)
        self.rows = list(rows or [])
        self.timing = list(timing or [])
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run logged after its last checkpoint
            purge = (self.rows[-1]["step"] + 1) if self.rows else None
            self.writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=purge)

    def log(self, row: dict[str, Any], timing: dict[str, Any]) -> None:
        self.rows.append(row)
        self.timing.append(timing)
        write_text(self.out / "train_metrics.csv", rows_to_csv(self.rows))
        write_text(self.out / "train_timing.csv", rows_to_csv(self.timing))
        if self.writer is not None:
            step = int(row["step"])
            for prefix, d in (("train", row), ("time", timing)):
                for k, v in d.items():
                    if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                        self.writer.add_scalar(f"{prefix}/{k}", v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
