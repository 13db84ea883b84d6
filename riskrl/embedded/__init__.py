"""The embedded backend: a tiny model, a verifiable task and a CPU RL trainer (docs/embedded.md).

Stages: ``task`` (problems + exact checker) -> ``model`` (character tokenizer + tiny Qwen2)
-> ``sft`` (imperfect, diverse base) -> ``trainer`` (any estimator of verl's registry) ->
``sampler`` (``EmbeddedSampler`` for evaluation); ``ray_runner`` runs trainings as Ray tasks.
``configs`` holds the per-stage config dataclasses, ``runtime`` the device and thread helpers.
Command line: ``python -m riskrl.embedded --help``.
"""
