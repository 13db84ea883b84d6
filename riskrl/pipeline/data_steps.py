"""download -> prepare -> validate, driven by the ``data`` section of params.yaml."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from riskrl.config import DatasetSpec, Params
from riskrl.io import atomic_path, write_json
from riskrl.pipeline.paths import Paths


def _specs(p: Params) -> list[tuple[str, DatasetSpec]]:
    return [("train", s) for s in p.data.train] + [("benchmark", s) for s in p.data.benchmarks]


def _is_hub(spec: DatasetSpec) -> bool:
    from riskrl.data import get_source

    return get_source(spec.source).hub_id is not None and not spec.local


def download(p: Params, paths: Paths) -> Path:
    """Save every Hub source the study uses under data/raw/<source>/ (datasets' cache behind);
    local and synthetic sources need nothing. Writes data/raw/MANIFEST.json."""
    from riskrl.data import download as hub_download

    manifest = []
    with atomic_path(paths.raw, is_dir=True) as tmp:
        done: set[tuple[str, str | None]] = set()
        for role, spec in _specs(p):
            entry = {"role": role, "source": spec.source, "split": spec.split, "revision": spec.revision}
            if _is_hub(spec) and (spec.source, spec.revision) not in done:
                hub_download(spec.source, tmp, revision=spec.revision, cache_dir=p.data.hf_cache)
                done.add((spec.source, spec.revision))
                entry["saved"] = spec.source
            manifest.append(entry)
        write_json(tmp / "MANIFEST.json", manifest)
    return paths.raw


def prepare(p: Params, paths: Paths) -> dict[str, Path]:
    """Every dataset to data/prepared/<name>.parquet in verl's schema."""
    from riskrl.data import prepare as prepare_one

    out: dict[str, Path] = {}
    with atomic_path(paths.prepared, is_dir=True) as tmp:
        for _, spec in _specs(p):
            local = spec.local or ([str(paths.raw / spec.source)] if _is_hub(spec) else None)
            res = prepare_one(
                spec.source, tmp, split=spec.split, local=local, revision=spec.revision, template=spec.template,
                limit=spec.limit, n=spec.n, seed=spec.seed, difficulty=dataclasses.asdict(p.task),
                name=spec.file_name, cache_dir=p.data.hf_cache,
            )
            out[spec.file_name] = paths.prepared / Path(res.path).name
    return out


def train_files(p: Params, paths: Paths) -> list[Path]:
    return [paths.prepared / f"{s.file_name}.parquet" for s in p.data.train]


def benchmark_files(p: Params, paths: Paths) -> dict[str, Path]:
    return {s.file_name: paths.prepared / f"{s.file_name}.parquet" for s in p.data.benchmarks}


def validate(p: Params, paths: Paths):
    """great-expectations suites over every prepared file (+ contamination train vs benchmarks);
    a failure raises with one line per failed expectation; results stay in data/validation/."""
    from riskrl.data import validate as validate_files

    return validate_files(
        [str(f) for f in train_files(p, paths)], [str(f) for f in benchmark_files(p, paths).values()],
        out_dir=paths.validation, max_prompt_length=p.data.max_prompt_length,
    )
