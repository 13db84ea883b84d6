"""Rule rewards for riskrl: math answers (math-verify) and the embedded backend's exact tasks.

Docs: docs/rewards.md.

``compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs)`` has verl's
custom-reward signature and returns ``{"score": float, "acc": bool, "pred": str}``:

- ``data_source`` starting with ``riskrl/`` (the embedded backend's synthetic tasks, e.g.
  ``riskrl/multiply``): exact match of the response cut at its first whitespace/EOS;
- anything else (``HuggingFaceH4/MATH-500``, ``openai/gsm8k``, ``BytedTsinghua-SIA/DAPO-Math-17k``,
  ...): the last ``\\boxed{}`` / ``Answer:`` / ``####`` answer, checked with math-verify.

Each call is bounded in time (``timeout_s``, default 5 s) and safe from threads and Ray workers.

Use it from verl (``main_ppo``) with the ``reward.`` keys, either by module::

    reward.custom_reward_function.path=pkg://riskrl.rewards \\
    reward.custom_reward_function.name=compute_score

or by file (this file; it only uses absolute imports, so loading it by path works)::

    reward.custom_reward_function.path=$(python -c 'import riskrl.rewards,os;print(os.path.abspath(riskrl.rewards.__file__))') \\
    reward.custom_reward_function.name=compute_score \\
    +reward.custom_reward_function.reward_kwargs.timeout_s=5

The legacy top-level ``custom_reward_function.path=...`` keys are silently ignored by verl
0.9.1's ``main_ppo`` (it keeps ``default_compute_score``); do not use them.
"""

from __future__ import annotations

from typing import Any

from riskrl.rewards.exact import exact_score
from riskrl.rewards.extract import extract_answer, gsm8k_answer, last_boxed
from riskrl.rewards.math_answer import DEFAULT_TIMEOUT_S, answers_match, is_parseable, math_score

EXACT_PREFIX = "riskrl/"

__all__ = [
    "compute_score",
    "exact_score",
    "math_score",
    "answers_match",
    "is_parseable",
    "extract_answer",
    "gsm8k_answer",
    "last_boxed",
    "EXACT_PREFIX",
]


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict | None = None,
    **kwargs: Any,
) -> dict:
    """Score one response: ``{"score": 1.0 or 0.0, "acc": bool, "pred": parsed answer or ""}``.

    ``kwargs``: ``timeout_s`` (float, wall-clock bound for the math comparison); anything else
    verl passes (``reward_router_address``, ...) is ignored.
    """
    if str(data_source).startswith(EXACT_PREFIX):
        return exact_score(solution_str, ground_truth)
    timeout_s = float(kwargs.get("timeout_s", DEFAULT_TIMEOUT_S))
    return math_score(solution_str, ground_truth, timeout_s=timeout_s)
