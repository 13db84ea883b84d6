"""riskrl's verl YAML declares every estimator option with the options' own defaults."""

from pathlib import Path

import pytest
import yaml

from riskrl.estimators import ESTIMATOR_OPTIONS

YAML = Path(__file__).resolve().parents[2] / "riskrl" / "verl" / "config" / "riskrl_trainer.yaml"


@pytest.mark.parametrize("name", ["rs_grpo", "riskpo", "passk", "pkpo"])
def test_yaml_section_equals_option_defaults(name):
    section = yaml.safe_load(YAML.read_text())["algorithm"][name]
    model = ESTIMATOR_OPTIONS[name]
    assert section == model().model_dump()
    assert model(**section) == model()
