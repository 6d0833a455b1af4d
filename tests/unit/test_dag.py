"""A stage is one record (pipeline/dag.py): dvc.yaml is generated from the records and kept current,
its code deps are the modules each stage runs, and a stage's name lives in few files."""

from __future__ import annotations

import re
import shutil

import yaml
from conftest import ROOT, sh

from ladder.pipeline import dag, stamps


def test_dvc_yaml_is_what_the_records_generate(tmp_path):
    assert (ROOT / "dvc.yaml").read_text() == dag.dvc_yaml(stamps.code_files), "run `ladder dag --write`"
    # `ladder dag --check` says so in one line, and --write puts it right
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    text = (tmp_path / "dvc.yaml").read_text()
    (tmp_path / "dvc.yaml").write_text(text.replace("      - seed\n", "", 1))
    p = sh("ladder dag --check", tmp_path, check=False)
    assert p.returncode == 1 and p.stderr.strip() == (
        "ladder dag: error: dvc.yaml: not what the stage records say; run `ladder dag --write`"
    )
    sh("ladder dag --write", tmp_path)
    assert (tmp_path / "dvc.yaml").read_text() == text


def test_dvc_code_deps_are_exactly_the_modules_each_stage_runs():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(dag.STAGES)
    for name, body in stages.items():
        deps = [d for d in body.get("do", body)["deps"] if d.startswith("src/")]
        assert deps == list(stamps.code_files(name)), name
    assert "src/ladder/nn/loader.py" in stamps.code_files("train")  # what a stage imports, transitively
    assert "src/ladder/pipeline/dag.py" not in stamps.code_files("train")  # a record edit reruns no other stage


def test_a_stage_name_is_spelled_in_at_most_three_files_under_src():
    """Its record, its module, and at most one more place that has to name it. A quoted name counts unless
    it is a folder (`RESULTS / "sweep"`), a key (`row["rung"]`) or a params block (`_shape_size("sweep", ...)`)."""
    sources = {p: p.read_text() for p in (ROOT / "src/ladder").rglob("*.py")}
    for name in dag.STAGES:
        if name in ("train", "eval"):  # words of their own too: the train split, a model's eval mode
            continue
        files = [
            p.relative_to(ROOT).as_posix()
            for p, text in sources.items()
            if re.search(rf"(?<!/ )(?<!\[)(?<!_shape_size\()[\"']{name}[\"'@]", text) and p.name != "log.py"
        ]  # `ladder log --kinds rung,cell`: kinds of row, named for the runs they show
        assert len(files) <= 3, (name, files)


def test_every_job_is_named_once_and_its_inputs_are_manifests():
    from ladder.pipeline import config

    params = config.load(ROOT / "params.yaml")
    jobs = dag.jobs(params)
    assert len({dag.job_name(*j) for j in jobs}) == len(jobs)
    manifests = {dag.manifest(*j) for j in jobs}
    for stage, run in jobs:
        assert dag.manifest(stage, run) in dag.outputs(stage, run), (stage, run)
        assert set(dag.inputs(params, stage, run)) <= manifests | {dag.paths.EMBEDDED_SUMS}
    assert dag.inputs(params, "train", "tiny") == [dag.paths.SHARD_INDEX, dag.paths.PlanFiles("base").plan]
