"""riskrl: risk-sensitive RLVR post-training (RiskPO, RS-GRPO) as an upstream-verl plugin."""
__version__ = "0.1.0"
