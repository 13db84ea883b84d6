"""The embedded backend: a tiny model, a verifiable task and a CPU RL trainer (docs/embedded.md).

Stages: ``task`` (problems + exact checker) -> ``model`` (character tokenizer + tiny Qwen2)
-> ``sft`` (imperfect, diverse base) -> ``trainer`` (GRPO / RS-GRPO / RiskPO through verl's
registry) -> ``sampler`` (``EmbeddedSampler`` for evaluation); ``ray_runner`` runs trainings
as Ray tasks. Command line: ``python -m riskrl.embedded --help``.
"""
