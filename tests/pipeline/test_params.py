"""params.yaml: one schema, one-line errors naming the key and the allowed values."""

import copy
from pathlib import Path

import pytest
import yaml

from riskrl.config import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "params.yaml").read_text())


def load_with(tmp_path, mutate):
    d = copy.deepcopy(BASE)
    mutate(d)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(d))
    return lambda: load_params(path)


def test_repository_params_are_valid_and_declare_the_default_grid():
    p = load_params(ROOT / "params.yaml")
    assert p.backend == "embedded"
    assert p.train.estimators == ["grpo", "rs_grpo", "riskpo"]
    assert p.train.lrs == [3e-5, 3e-4] and p.train.seeds == [0, 1, 2]
    assert len(p.train.grid()) == 18
    assert p.train.rs_grpo.beta == 2.0
    assert p.train.riskpo.use_q_track_mode == "track" and p.train.riskpo.quantile_up == 0.9  # MATH preset


def test_run_config_maps_every_estimator_option(tmp_path):
    p = load_with(tmp_path, lambda d: d["train"]["riskpo"].update(bundle_size=3, use_q_track_mode="batch"))()
    cfg = p.train.run_config("riskpo", 3e-4, 2, model="m", data="d", out="o")
    assert (cfg.estimator, cfg.lr, cfg.seed, cfg.steps) == ("riskpo", 3e-4, 2, 100)
    assert cfg.riskpo_mode == "batch" and cfg.riskpo_overrides["bundle_size"] == 3
    assert p.train.run_config("rs_grpo", 3e-5, 0, model="m", data="d", out="o").rs_grpo_beta == 2.0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["train"]["riskpo"].update(bundle_size=0), "train.riskpo.bundle_size=0: Input should be greater than or equal to 1"),
        (lambda d: d["train"].update(lrr=1), "unknown key train.lrr (known: estimators, lrs, seeds,"),
        (lambda d: d["train"].update(steps="many"), "train.steps='many': Input should be a valid integer"),
        (lambda d: d["train"].update(steps=0), "train.steps must be >= 1, got 0"),
        (lambda d: d["train"].update(estimators=["grpo", "riskpoo"]), "train.estimators.1='riskpoo': Input should be 'grpo', 'rs_grpo' or 'riskpo'"),
        (lambda d: d["train"]["riskpo"].update(quantile_down=0.95), "quantile_down=0.95 must be < quantile_up=0.9"),
        (lambda d: d.update(backend="gpu"), "backend='gpu': Input should be 'embedded' or 'verl'"),
        (lambda d: d["data"]["train"][0].update(source="mathh"), "unknown source 'mathh'; known: aime_2024,"),
        (lambda d: d["sft"].update(stepz=3), "unknown key(s) stepz (known: steps,"),
        (lambda d: d["evaluate"].update(top_p=1.5), "evaluate.top_p=1.5: Input should be less than or equal to 1"),
        (lambda d: d.update(extra={}), "unknown key extra (known: backend, cluster,"),
        (lambda d: d["train"].update(lrs=[-1]), "every learning rate must be > 0"),
        (lambda d: d["cluster"].update(cpus_per_run=0), "cluster.cpus_per_run=0: Input should be greater than 0"),
        (lambda d: d["train"].update(model="x"), "unknown key train.model"),  # paths are set per run
        (lambda d: d.pop("train"), "missing key train"),
    ],
)
def test_bad_params_one_line(tmp_path, mutate, message):
    load = load_with(tmp_path, mutate)
    with pytest.raises(ParamsError) as exc:
        load()
    text = str(exc.value)
    assert message in text, text
    assert "\n" not in text and text.startswith(str(tmp_path / "params.yaml"))


def test_unreadable_params(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")
