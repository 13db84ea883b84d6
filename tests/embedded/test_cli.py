import json

import pandas as pd

from riskrl.embedded.__main__ import main


def test_cli_end_to_end(tmp_path, capsys):
    m, d = tmp_path / "init", tmp_path / "train.parquet"
    assert (
        main(
            [
                "init-model",
                "--out",
                str(m),
                "--hidden-size",
                "32",
                "--num-layers",
                "1",
                "--num-heads",
                "2",
                "--num-kv-heads",
                "2",
                "--intermediate-size",
                "64",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "make-data",
                "--out",
                str(d),
                "--split",
                "train",
                "--n",
                "30",
                "--a-digits",
                "1",
                "--b-digits",
                "1",
                "--heldout-frac",
                "0.2",
            ]
        )
        == 0
    )
    assert len(pd.read_parquet(d)) == 30
    cfg = tmp_path / "params.yaml"
    cfg.write_text("sft:\n  steps: 5\n  batch_size: 8\n  target_acc: 0\n  progress: false\n")
    assert (
        main(
            [
                "sft",
                "--model",
                str(m),
                "--data",
                str(d),
                "--out",
                str(tmp_path / "base"),
                "--config",
                str(cfg),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "--model",
                str(tmp_path / "base"),
                "--data",
                str(d),
                "--out",
                str(tmp_path / "rl"),
                "--estimator",
                "riskpo",
                "--lr",
                "1e-4",
                "--seed",
                "1",
                "--steps",
                "2",
                "--prompts-per-step",
                "5",
                "--n",
                "2",
                "--max-new-tokens",
                "3",
                "--riskpo-mode",
                "batch",
                "--no-progress",
                "--no-tensorboard",
                "--riskpo-overrides",
                '{"bundle_size": 2}',
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["estimator"] == "riskpo" and printed["mode"] == "batch" and printed["seed"] == 1
    run = json.loads((tmp_path / "rl" / "run.json").read_text())
    assert run["algorithm"]["riskpo"]["bundle_size"] == 2 and run["lr"] == 1e-4


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--model",
                str(tmp_path),
                "--data",
                "x.parquet",
                "--out",
                str(tmp_path / "o"),
                "--estimator",
                "nope",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown estimator 'nope'") and "\n" not in err
    assert (
        main(
            [
                "train",
                "--model",
                str(tmp_path),
                "--data",
                "x.parquet",
                "--out",
                str(tmp_path / "o"),
                "--riskpo-overrides",
                '{"w_mixx": 1}',
            ]
        )
        == 2
    )
    assert "w_mixx" in capsys.readouterr().err


def test_every_config_field_is_documented():
    import dataclasses

    from riskrl.embedded.config import field_docs
    from riskrl.embedded.model import ModelConfig
    from riskrl.embedded.sft import SFTConfig
    from riskrl.embedded.task import TaskConfig
    from riskrl.embedded.trainer import TrainConfig

    for cls in (TaskConfig, ModelConfig, SFTConfig, TrainConfig):
        docs = field_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert not missing, f"{cls.__name__}: undocumented {missing}"
    assert "learning rate" in field_docs(TrainConfig)["lr"]
