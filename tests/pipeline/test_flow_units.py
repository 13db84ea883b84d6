"""The flow's pieces that need no Prefect server or DVC run: the artifact, one-line errors, log filters."""

import pytest

from flows.study import NOISE, PROGRESS, _one_line_error, subsampling_notes
from riskrl.report.artifact import artifact_key, experiment_markdown, split_table


def _diff(ks=(1, 2, 4, 8, 16, 32, 64, 128)):
    study = {}
    for i, k in enumerate(ks):
        study[f"riskpo/lr0.0003.multiply_test/pass@{k}"] = {"old": 0.1 * (i + 1) / 10, "new": 0.2 * (i + 1) / 10,
                                                            "diff": 0.1 * (i + 1) / 10}
        study[f"riskpo/lr0.0003.multiply_test/maj@{k}"] = {"old": 0.5, "new": 0.5, "diff": 0.0}
    study["base.multiply_test/pass@1"] = {"old": None, "new": 0.05}
    return {"metrics/study.json": study}


def test_artifact_has_one_heading_overrides_tables_and_diff():
    md = experiment_markdown(experiment="witty-lemur", overrides=["train.steps=5", "evaluate.max_problems=50"],
                             diff=_diff(), baseline="main", notes=subsampling_notes(
                                 "evaluate:\n  max_problems: 50\ndata:\n  benchmarks:\n  - {source: math500, limit: 20}\n"),
                             report_path="/cache/files/md5/ab/cdef")
    headings = [ln for ln in md.splitlines() if ln.startswith("# ")]
    assert headings == ["# riskrl study: experiment `witty-lemur`"]
    assert "Overrides: `train.steps=5`, `evaluate.max_problems=50`" in md
    assert "`evaluate.max_problems=50`: Pass@k on the first 50 problems" in md
    assert "`data.benchmarks[0].limit=20`: only the first 20 problems of math500" in md
    # 8 pass@k columns: split into 6 + 2, each repeating the label column; maj@k not in the Pass@k table
    tables = [ln for ln in md.splitlines() if ln.startswith("| run.benchmark")]
    assert tables == ["| run.benchmark | pass@1 | pass@2 | pass@4 | pass@8 | pass@16 | pass@32 |",
                      "| run.benchmark | pass@64 | pass@128 |"]
    assert "| riskpo/lr0.0003.multiply_test | 0.0200 | 0.0400 | 0.0600 | 0.0800 | 0.1000 | 0.1200 |" in md
    # the change against main, dvc metrics diff style: value, baseline, delta (first and last k)
    assert "| metric | value | main | change |" in md
    assert "| riskpo/lr0.0003.multiply_test/pass@1 | 0.0200 | 0.0100 | +0.0100 |" in md
    assert "| riskpo/lr0.0003.multiply_test/pass@128 | 0.1600 | 0.0800 | +0.0800 |" in md
    assert "| base.multiply_test/pass@1 | 0.0500 | – | – |" in md  # no baseline value yet
    assert "Full report: `/cache/files/md5/ab/cdef`" in md


def test_baseline_run_says_so_and_no_note():
    md = experiment_markdown(experiment="e", overrides=[], diff=_diff((1, 4)), notes=subsampling_notes("evaluate: {}\n"))
    assert "Overrides: none (the committed baseline)" in md and "Note" not in md


def test_split_table_fits_and_keeps_rows():
    t = split_table(["a", *[f"c{i}" for i in range(13)]], [["x", *range(13)]], max_columns=6)
    blocks = t.strip().split("\n\n")
    assert [b.splitlines()[0].count("|") - 1 for b in blocks] == [7, 7, 2]
    assert blocks[2].splitlines()[2] == "| x | 12 |"


def test_artifact_key_per_deployment():
    assert artifact_key(None) == "riskrl-passk"
    assert artifact_key("Nightly_GPU") == "riskrl-passk-nightly-gpu"


def test_dvc_lock_error_is_one_line_with_its_holder():
    out = ["Running stage 'prepare':",
           "ERROR: 'data/prepared' is busy, it is being blocked by:",
           "  (PID 4242): dvc repro -s train@grpo",
           "",
           "If there are no processes with such PIDs, you can manually remove '.dvc/tmp/rwlock' and try again.",
           "Having any troubles? Hit us up at https://dvc.org/support, we are always happy to help!"]
    msg = _one_line_error(out, "prepare", 255)
    assert msg == ("ERROR: 'data/prepared' is busy, it is being blocked by: (PID 4242): dvc repro -s train@grpo "
                   "If there are no processes with such PIDs, you can manually remove '.dvc/tmp/rwlock' and try again.")


def test_stage_own_error_wins_over_dvc_summary():
    out = ["> python stages/train.py grpo", "stage train: cannot reach the Ray cluster at 10.0.0.5:6379 within 10s",
           "ERROR: failed to reproduce 'train@grpo': failed to run: python stages/train.py grpo, exited with 1"]
    assert _one_line_error(out, "train@grpo", 1) == "train@grpo: stage train: cannot reach the Ray cluster at 10.0.0.5:6379 within 10s"


def test_uncaught_exception_of_a_stage_is_its_last_traceback_line():
    out = ["Traceback (most recent call last):", '  File "stages/train.py", line 19, in <module>',
           "Exception: The current node timed out during startup.",
           "ERROR: failed to reproduce 'train@grpo': failed to run: python stages/train.py grpo, exited with 1"]
    assert _one_line_error(out, "train@grpo", 1) == (
        "train@grpo: Exception: The current node timed out during startup. (ERROR: failed to reproduce "
        "'train@grpo': failed to run: python stages/train.py grpo, exited with 1)")


@pytest.mark.parametrize("line, noise, progress", [
    ("INFO great_expectations._docs_decorators: Skipping registering function get_context because x", True, False),
    ("sft:  25%|██▌       | 1/4 [00:00<00:00,  8.87it/s, acc=-, loss=3.104]", False, True),
    ("ray runs: 100%|██████████| 1/1 [00:14<00:00, 14.05s/it]", False, True),
    ("stage sft: done in 24.9s", False, False),
])
def test_log_filters(line, noise, progress):
    assert bool(NOISE.search(line)) is noise
    assert bool(PROGRESS.search(line)) is progress


class _Head:
    """A stand-in for riskrl.cluster.LocalHead: env() returns or raises what it is given."""

    def __init__(self, env=None, error=None):
        self._env, self._error, self.calls = env, error, 0

    def env(self):
        self.calls += 1
        if self._error:
            from riskrl.cluster import ClusterError

            raise ClusterError(self._error)
        return self._env


class _Logger:
    def __init__(self):
        self.warnings = []

    def warning(self, msg):
        self.warnings.append(msg)


def test_ray_stages_get_the_shared_heads_env_and_fall_back_to_their_own(monkeypatch):
    from flows import study

    ok = _Head(env={"RAY_ADDRESS": "127.0.0.1:1234", "RISKRL_RAY_SAME_HOST": "1"})
    monkeypatch.setattr(study, "_HEADS", {"/ws": ok, "/broken": _Head(error="the local Ray head at x did not start")})
    log = _Logger()
    for stage in ("train@grpo", "evaluate@rs_grpo_b2", "evaluate_base", "dvc.yaml:train@grpo"):
        assert study._head_env("/ws", stage, log)["RAY_ADDRESS"] == "127.0.0.1:1234", stage
    for stage in ("download", "prepare", "validate", "sft", "report", "bandit"):
        assert study._head_env("/ws", stage, log) == {}, stage  # no Ray there: no head asked for
    assert ok.calls == 4 and log.warnings == []
    assert study._head_env("/other-run", "train@grpo", log) == {}  # no shared head for that run
    assert study._head_env("/broken", "train@grpo", log) == {}
    assert log.warnings == ["train@grpo: the local Ray head at x did not start; the stage starts a Ray head of its own"]
