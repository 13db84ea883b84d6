"""Evaluation: sampling engines, the samples table, and unbiased Pass@k metrics with bootstrap CIs.

Math and metric definitions: /work/shared/METHODS.md ("Pass@k"); CLI: ``python -m riskrl.evaluation``.
"""

from riskrl.evaluation.metrics import compute_metrics, metrics_long_table, problem_table, write_metrics
from riskrl.evaluation.passk import (
    answer_diversity,
    bootstrap_ci,
    encode_answers,
    k_values,
    maj_at_k,
    pass_at_k,
)
from riskrl.evaluation.sampling import (
    Sampler,
    VLLMSampler,
    get_sampler,
    register_sampler,
    render_prompt,
    run_evaluation,
)
from riskrl.evaluation.schema import SAMPLES_SCHEMA, read_samples, validate_samples

__all__ = [
    "SAMPLES_SCHEMA",
    "Sampler",
    "VLLMSampler",
    "answer_diversity",
    "bootstrap_ci",
    "compute_metrics",
    "encode_answers",
    "get_sampler",
    "k_values",
    "maj_at_k",
    "metrics_long_table",
    "pass_at_k",
    "problem_table",
    "read_samples",
    "register_sampler",
    "render_prompt",
    "run_evaluation",
    "validate_samples",
    "write_metrics",
]
