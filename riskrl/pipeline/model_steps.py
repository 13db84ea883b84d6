"""sft (embedded): a fresh tiny model, warm-started on the training set."""

from __future__ import annotations

import tempfile
from pathlib import Path

from riskrl.config import Params
from riskrl.pipeline.data_steps import train_files
from riskrl.pipeline.paths import Paths
from riskrl.pipeline.stage import StageError


def sft(p: Params, paths: Paths) -> dict:
    if p.backend != "embedded":
        raise StageError("the sft stage belongs to backend: embedded (verl starts from verl.model_path)")
    from riskrl.embedded.model import init_model
    from riskrl.embedded.sft import run_sft

    data = train_files(p, paths)[0]
    paths.base_model.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="init-", dir=paths.base_model.parent) as tmp:
        init = init_model(p.model, Path(tmp) / "init")
        return run_sft(p.sft_config(model=str(init), data=str(data), out=str(paths.base_model)))
