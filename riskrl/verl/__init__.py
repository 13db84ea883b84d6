"""riskrl on upstream verl: Hydra config, launcher and the V1 trainer with the RiskPO tracker.

``python -m riskrl.verl <hydra overrides>`` is ``python -m verl.trainer.main_ppo`` with
``config/riskrl_trainer.yaml`` (verl's ppo_trainer + ``algorithm.rs_grpo.*`` and
``algorithm.riskpo.*``). The estimators themselves reach verl through the ``verl.plugins``
entry point, so the stock launcher resolves ``rs_grpo``/``riskpo`` too.
"""
