"""The trainer and the sampler on CUDA (skipped without a GPU; CI is CPU-only)."""

import pytest
import torch

from riskrl.embedded.sampler import EmbeddedSampler
from riskrl.embedded.trainer import TrainConfig, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_train_and_sample_on_cuda(tiny_base, tiny_data, tmp_path):
    info = train(
        TrainConfig(
            model=str(tiny_base),
            data=str(tiny_data / "train.parquet"),
            out=str(tmp_path / "r"),
            estimator="riskpo",
            steps=2,
            prompts_per_step=10,
            n=4,
            save_every=1,
            device="cuda",
            progress=False,
        )
    )
    assert info["device"].startswith("cuda")
    resumed = train(
        TrainConfig(
            model=str(tiny_base),
            data=str(tiny_data / "train.parquet"),
            out=str(tmp_path / "r"),
            estimator="riskpo",
            steps=3,
            prompts_per_step=10,
            n=4,
            save_every=1,
            device="cuda",
            resume=True,
            progress=False,
        )
    )
    assert resumed["resumed_from_step"] == 2
    s = EmbeddedSampler(tmp_path / "r" / "model")
    assert s.device.type == "cuda"
    out = s.sample(["3*4="], n=4, temperature=1.0, top_p=0.9, max_tokens=3, seed=0)
    assert len(out[0]) == 4
