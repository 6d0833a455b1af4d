"""What a stage is built from: its code (the import closure) and its params, recorded as a stamp, and
the snapshot files whose dates carry Snakemake's verdict (pipeline/stamps.py)."""

from __future__ import annotations

import ast
import json
import os
import shutil

from conftest import ROOT, edit_params

from ladder.pipeline import config, dag, paths, stamps
from ladder.pipeline.files import sha256_file, write_json


def test_code_files_follow_every_import_inside_the_package():
    train = stamps.code_files("train")
    for module in (
        "stages/train.py",
        "nn/model.py",
        "nn/kernels.py",
        "nn/loader.py",
        "nn/recipe.py",
        "nn/checkpoint.py",
        "nn/cost.py",
        "data/shards.py",
        "pipeline/config.py",
    ):
        assert f"src/ladder/{module}" in train, module  # kernels.py is imported inside a function
    assert "src/ladder/pipeline/progress.py" not in train  # progress bars and log lines shape no result
    assert not any("/tools/" in f or f.endswith("cli.py") for s in dag.STAGES for f in stamps.code_files(s))
    assert "src/ladder/data/sources.py" in stamps.code_files("eval")  # extra held-out sets are read like corpora
    assert "src/ladder/nn/model.py" not in stamps.code_files("tokenizer")


def test_left_out_modules_hold_nothing_that_shapes_a_result():
    for rel in stamps.NOT_CODE:
        path = ROOT / "src/ladder" / rel
        text = path.read_text()
        if rel.endswith("__init__.py"):  # a docstring at most
            body = ast.parse(text).body
            assert not body or (len(body) == 1 and isinstance(body[0], ast.Expr)), rel
        else:
            assert "import torch" not in text and "numpy" not in text, rel


def test_snapshots_change_only_with_their_slice_and_are_dated_by_the_verdict(tmp_path, monkeypatch):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    params = config.load()
    stamps.write_snapshots(params)
    snaps = tmp_path / paths.SNAPSHOTS
    before = {f.name: f.read_text() for f in snaps.iterdir()}
    assert set(before) == {f"{dag.job_name(s, z)}.json" for s, z in dag.jobs(params)}
    assert json.loads(before["train@tiny.json"])["params"]["lr"] == params.lr

    edit_params(tmp_path, lambda p: p.update(lr=0.01))
    stamps.write_snapshots(config.load())
    after = {f.name: f.read_text() for f in snaps.iterdir()}
    # every size's training and every scaling rung (the shipped recipe at a smaller shape) read lr
    assert {n for n in after if after[n] != before[n]} == (
        {f"train@{s}.json" for s in params.sizes} | {f"rung@{r}.json" for r in params.scaling.rungs()}
    )

    # a manifest that records the current stamp: the snapshot is dated at the epoch (reruns nothing)
    paths.TOKENIZER.parent.mkdir(parents=True, exist_ok=True)
    paths.TOKENIZER.write_text("{}")
    tokenizer = sha256_file(paths.TOKENIZER)
    write_json(paths.TOKENIZER_REPORT, {"sha256": tokenizer, "built_from": stamps.stamp(config.load(), "tokenizer")})
    stamps.write_snapshots(config.load())
    snap = snaps / "tokenizer.json"
    assert snap.stat().st_mtime == stamps.EPOCH and "stale" not in json.loads(snap.read_text())
    # the params moved on since: dated now, and the content says what is stale
    edit_params(tmp_path, lambda p: p["tokenizer"].update(vocab_size=1024))
    stamps.write_snapshots(config.load())
    assert snap.stat().st_mtime > os.path.getmtime(paths.TOKENIZER_REPORT) - 1
    assert json.loads(snap.read_text())["stale"] == ["params"]
    # an unreadable manifest counts as built from something else
    paths.TOKENIZER_REPORT.write_text("{not json")
    stamps.write_snapshots(config.load())
    assert json.loads(snap.read_text())["stale"] == [
        "code",
        "inputs",
        "params",
        "outputs",
    ]  # nor vouches for its outputs
    # an input manifest that moved on since (the split was rebuilt): stale inputs
    edit_params(tmp_path, lambda p: p["tokenizer"].update(vocab_size=512))
    write_json(paths.SUBSET_STATS, {"sha256": "before"})
    write_json(paths.TOKENIZER_REPORT, {"sha256": tokenizer, "built_from": stamps.stamp(config.load(), "tokenizer")})
    write_json(paths.SUBSET_STATS, {"sha256": "after"})
    stamps.write_snapshots(config.load())
    assert json.loads(snap.read_text())["stale"] == ["inputs"]
    # outputs that are not the files the manifest recorded (a truncated or edited tokenizer): stale outputs
    write_json(paths.TOKENIZER_REPORT, {"sha256": tokenizer, "built_from": stamps.stamp(config.load(), "tokenizer")})
    stamps.write_snapshots(config.load())
    assert "stale" not in json.loads(snap.read_text())
    paths.TOKENIZER.write_text("{ }")
    stamps.write_snapshots(config.load())
    assert json.loads(snap.read_text())["stale"] == ["outputs"]


def test_a_folder_is_dated_as_snakemake_dates_it(tmp_path):
    """By the .snakemake_timestamp in it, which a stage that rewrites the folder in place (live/, run by
    DVC or by hand) leaves as an earlier Snakemake run dated it; align_dates must see that date."""
    folder = tmp_path / "live"
    folder.mkdir()
    (folder / "metrics.json").write_text("{}")
    os.utime(folder, (2e9, 2e9))
    assert stamps._mtime(folder) == 2e9
    (folder / ".snakemake_timestamp").touch()
    os.utime(folder / ".snakemake_timestamp", (1e9, 1e9))
    assert stamps._mtime(folder) == 1e9
