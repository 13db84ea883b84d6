"""Where every stage reads and writes (one place, so dvc.yaml and the code agree)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path = Path(".")

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def prepared(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def validation(self) -> Path:
        return self.root / "data" / "validation"

    @property
    def base_model(self) -> Path:
        return self.root / "models" / "base"

    def runs(self, variant: str) -> Path:
        """runs/<variant>/: one directory per (lr, seed) run of a train.variants entry."""
        return self.root / "runs" / variant

    def evals(self, variant: str) -> Path:
        return self.root / "evals" / variant

    @property
    def base_eval(self) -> Path:
        return self.root / "evals" / "base"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def eval_metrics(self, name: str) -> Path:
        """DVC metrics file of an evaluate stage (``name``: a variant or ``base``), outside its
        cached out directory."""
        return self.root / "metrics" / f"evaluate_{name}.json"

    @property
    def study_metrics(self) -> Path:
        return self.root / "metrics" / "study.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def bandit(self) -> Path:
        return self.root / "outputs" / "bandit"


def run_name(lr: float, seed: int) -> str:
    """``lr3e-05_s0``: a grid cell's directory name."""
    return f"lr{lr:g}_s{seed}"
