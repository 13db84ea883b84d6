"""verl's own loader finds compute_score through the documented reward.custom_reward_function keys."""

from __future__ import annotations

import os

import pytest

import riskrl.rewards


@pytest.mark.parametrize(
    "path", [os.path.abspath(riskrl.rewards.__file__), "pkg://riskrl.rewards"], ids=["file", "pkg"]
)
def test_verl_get_custom_reward_fn_loads_compute_score(path):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": path,
                    "name": "compute_score",
                    "reward_kwargs": {"timeout_s": 3},
                }
            }
        }
    )
    fn = get_custom_reward_fn(config)
    # called the way verl's NaiveRewardManager calls it (keywords, extra_info dict)
    out = fn(
        data_source="HuggingFaceH4/MATH-500",
        solution_str="\\boxed{0.5}",
        ground_truth="\\frac12",
        extra_info={},
    )
    assert out == {"score": 1.0, "acc": True, "pred": "0.5"}
    out = fn(
        data_source="riskrl/multiply",
        solution_str="00021<eos>",
        ground_truth="00021",
        extra_info={"index": 3},
    )
    assert out["score"] == 1.0
