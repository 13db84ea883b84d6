"""Shared tiny fixtures: a 2-layer model SFT-ed briefly on 1x1-digit products (seconds on CPU).

The trainer tests need a policy that is right *sometimes* (else every advantage is 0 and no
weight moves), so the session builds one small, imperfect base once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from riskrl.embedded.model import ModelConfig, init_model
from riskrl.embedded.sft import SFTConfig, run_sft
from riskrl.embedded.task import write_split

TINY_TASK = {"a_digits": 1, "b_digits": 1, "heldout_frac": 0.2}
TINY_MODEL = ModelConfig(
    hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, intermediate_size=64, max_positions=16
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    write_split(d / "train.parquet", 40, 0, "train", **TINY_TASK)
    write_split(d / "test.parquet", 8, 0, "test", **TINY_TASK)
    return d


@pytest.fixture(scope="session")
def tiny_init(tmp_path_factory) -> Path:
    return init_model(TINY_MODEL, tmp_path_factory.mktemp("init") / "model")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, tiny_init, tiny_data) -> Path:
    """A briefly SFT-ed tiny policy: right on some samples, wrong on others."""
    out = tmp_path_factory.mktemp("base") / "model"
    torch.set_num_threads(1)
    run_sft(
        SFTConfig(
            model=str(tiny_init),
            data=str(tiny_data / "train.parquet"),
            out=str(out),
            steps=100,
            batch_size=32,
            lr=1e-2,
            warmup_steps=5,
            target_acc=0.0,
            progress=False,
        )
    )
    return out
