"""No code runs from a checkpoint; a corrupt newest checkpoint is skipped; resume is exact."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from riskrl.embedded.checkpoint import CheckpointError, checkpoint_hash, config_hash, load_state
from riskrl.embedded.configs import to_dict
from riskrl.embedded.trainer import TrainConfig, train
from riskrl.pipeline.outputs import plan_resume


class _Payload:
    """Unpickling this calls os.system (writes a marker file): what a crafted checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious(path: Path, marker: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump({"payload": _Payload(marker)}, f)


def _cfg(tiny_base, tiny_data, out, **kw) -> TrainConfig:
    base = dict(model=str(tiny_base), data=str(tiny_data / "train.parquet"), out=str(out), steps=4,
                prompts_per_step=10, n=4, max_new_tokens=4, lr=3e-3, weight_decay=0.0, save_every=2,
                progress=False, estimator="riskpo", tensorboard=False)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def full_run(tiny_base, tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    train(_cfg(tiny_base, tiny_data, out))
    return out


def _cut(full: Path, dest: Path, steps=("step_2", "step_4")) -> Path:
    for s in steps:
        shutil.copytree(full / "checkpoints" / s, dest / "checkpoints" / s)
    return dest


@pytest.mark.parametrize("victim", ["tensors.pt", "optimizer.pt", "state.pt"])
def test_a_malicious_pickle_in_a_checkpoint_is_refused_without_running(full_run, tiny_base, tiny_data, tmp_path,
                                                                        victim):
    run = _cut(full_run, tmp_path / "run", steps=("step_2",))
    marker = tmp_path / "PWNED"
    if victim == "state.pt":  # a checkpoint in the old (pickled) layout
        (run / "checkpoints/step_2/state.json").unlink()
    _malicious(run / "checkpoints/step_2" / victim, marker)
    with pytest.raises(CheckpointError) as err:
        train(_cfg(tiny_base, tiny_data, run, resume=True))
    assert not marker.exists(), "the payload ran"
    msg = str(err.value)
    assert "\n" not in msg and victim in msg and str(run / "checkpoints/step_2") in msg
    assert ("refused" in msg) if victim != "state.pt" else ("delete" in msg and "older riskrl" in msg)


def test_a_malicious_riskpo_tracker_file_is_refused(tmp_path):
    from riskrl.verl.trainer import TRACKER_FILE, load_tracker

    marker = tmp_path / "PWNED"
    _malicious(tmp_path / TRACKER_FILE, marker)
    with pytest.raises(pickle.UnpicklingError):
        load_tracker(str(tmp_path))
    assert not marker.exists()


def test_checkpoints_hold_no_pickles(full_run):
    step = full_run / "checkpoints" / "step_4"
    assert sorted(p.name for p in step.iterdir()) == ["model", "optimizer.pt", "state.json", "tensors.pt",
                                                     "timing.json"]
    for f in ("optimizer.pt", "tensors.pt"):
        torch.load(step / f, weights_only=True)  # plain tensors: loads under the safe unpickler
    state = json.loads((step / "state.json").read_text())
    assert state["step"] == 4 and len(state["config_hash"]) == 16 and state["rng"]["numpy"][0] == "MT19937"


@pytest.mark.parametrize("victim", ["state.json", "tensors.pt", "optimizer.pt", "model/model.safetensors"])
def test_a_corrupt_newest_checkpoint_is_skipped_with_one_warning(full_run, tiny_base, tiny_data, tmp_path, caplog,
                                                                 victim):
    run = _cut(full_run, tmp_path / "run")
    f = run / "checkpoints/step_4" / victim
    f.write_bytes(f.read_bytes()[: max(1, f.stat().st_size // 3)])  # a half-written file
    (run / "checkpoints/.step_6.abc123.tmp").mkdir()  # a save killed midway
    (run / "checkpoints/.step_6.abc123.tmp/optimizer.pt").write_bytes(b"\0" * 10)
    with caplog.at_level(logging.WARNING, logger="riskrl.checkpoint"):
        info = train(_cfg(tiny_base, tiny_data, run, resume=True))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "step_4" in warnings[0] and "resuming from step_2" in warnings[0]
    assert info["resumed_from_step"] == 2
    assert not (run / "checkpoints/.step_6.abc123.tmp").exists()
    # and the resumed run is the uninterrupted one, bit for bit
    assert (run / "model/model.safetensors").read_bytes() == (full_run / "model/model.safetensors").read_bytes()
    assert (run / "train_metrics.csv").read_text() == (full_run / "train_metrics.csv").read_text()
    a, b = (json.loads((d / "run.json").read_text()) for d in (run, full_run))
    assert a["config"].pop("out") != b["config"].pop("out") and a == b  # only the folder differs


def test_legacy_state_pt_is_refused_in_one_line(full_run, tmp_path):
    step = tmp_path / "checkpoints" / "step_2"
    shutil.copytree(full_run / "checkpoints" / "step_2", step)
    (step / "state.json").unlink()
    torch.save({"step": 2}, step / "state.pt")
    with pytest.raises(CheckpointError, match=r"state\.pt: a checkpoint of an older riskrl .* delete"):
        load_state(step)


def test_plan_resume_resumes_an_unchanged_run_and_restarts_a_changed_one(full_run, tiny_base, tiny_data, tmp_path,
                                                                         caplog):
    same = _cfg(tiny_base, tiny_data, full_run)
    other = _cfg(tiny_base, tiny_data, full_run, lr=1e-2)
    assert checkpoint_hash(full_run / "checkpoints")[1] == config_hash(to_dict(same))
    with caplog.at_level(logging.INFO, logger="riskrl.stage"):
        a, b = plan_resume([same, other])
    assert a.resume is True and b.resume is False
    assert any("configuration changed" in r.getMessage() and "training afresh" in r.getMessage()
               for r in caplog.records)
    # more steps extend the same run (no schedule depends on the total)
    assert plan_resume([_cfg(tiny_base, tiny_data, full_run, steps=6)])[0].resume is True
