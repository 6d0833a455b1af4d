"""dvc.yaml (generated from the stage records) and the Snakemake rules (written by hand) describe the
same stages: commands, deps, params and outputs, and both declare as code exactly the modules each
stage runs."""

from __future__ import annotations

import csv
import io
import json
import re

import yaml
from conftest import ROOT, SIZES, all_targets, sh
from dvc.repo import Repo

from ladder.pipeline import config, dag, paths, stamps
from ladder.pipeline.dag import job_name

SNAPSHOTS = ".ladder/params/"


def dvc_graph(project) -> dict[str, dict]:
    graph = {}
    with Repo(str(project)) as repo:
        for stage in repo.index.stages:
            params = sorted(k for p in stage.params for k in p.params)
            graph[stage.name] = {
                "cmd": stage.cmd,
                "deps": sorted(str(d.def_path) for d in stage.deps if d not in stage.params),
                "params": params,
                # checkpoints outlive a run, so no Snakemake rule declares them (every DVC output is
                # persistent: tests/unit/test_layout.py)
                "outs": sorted(str(o.def_path) for o in stage.outs if o.def_path.rpartition("/")[2] != "ckpt"),
            }
    return graph


def snakemake_graph(project) -> dict[str, dict]:
    summary = sh(f"snakemake --detailed-summary {' '.join(all_targets())}", project).stdout
    graph: dict[str, dict] = {}
    for row in csv.DictReader(io.StringIO(summary), delimiter="\t"):
        inputs = row["input-file(s)"].split(",")
        parts = row["output_file"].split("/")
        per = dag.STAGES[row["rule"]].per
        size = parts[1] if per == "size" else parts[3] if per else None
        name = job_name(row["rule"], size)
        snap = [f for f in inputs if f.startswith(SNAPSHOTS)]
        assert snap == [f"{SNAPSHOTS}{name}.json"], (name, snap)
        entry = graph.setdefault(
            name,
            {
                "cmd": row["shellcmd"],
                "deps": sorted(f for f in inputs if not f.startswith(SNAPSHOTS)),
                "params": sorted(json.loads((project / snap[0]).read_text())["params"]),
                "outs": [],
            },
        )
        entry["outs"] = sorted(entry["outs"] + [row["output_file"]])
    return graph


# A DVC matrix cannot list its members as another stage's deps: the report over them takes their folder.
MATRIX = {
    "sweep": (paths.SWEEP_CELLS, paths.cell, lambda p: p.sweep.cells()),
    "fit": (paths.SCALING_RUNGS, paths.rung, lambda p: p.scaling.rungs()),
}


def test_dvc_and_snakemake_describe_the_same_graph(built):
    dvc, smk = dvc_graph(built), snakemake_graph(built)
    params = config.load(built / "params.yaml")
    for report, (folder, run, names) in MATRIX.items():
        members = [d for d in smk[report]["deps"] if d.startswith(f"{folder}/")]
        assert sorted(members) == sorted(str(run(c).summary) for c in names(params))
        smk[report]["deps"] = sorted({str(folder)} | set(smk[report]["deps"]) - set(members))
    assert set(dvc) == set(smk)
    for name in dvc:
        assert dvc[name] == smk[name], name
        base, _, size = name.partition("@")
        assert dvc[name]["outs"] == sorted(str(p) for p in dag.outputs(base, size or None)), name


def test_stamps_cover_exactly_the_small_inputs_each_stage_declares(built):
    """A stage's stamp hashes the manifests standing for its inputs: they must be the manifests (and
    the corpus checksum) it declares; the large files are covered by them."""
    params = config.load(built / "params.yaml")
    manifests = {str(dag.manifest(s, z)) for s, z in dag.jobs(params)} | {str(paths.EMBEDDED_SUMS)}
    for name, stage in dvc_graph(built).items():
        base, _, size = name.partition("@")
        small = {d for d in stage["deps"] if d in manifests}
        expected = {str(p) for p in dag.inputs(params, base, size or None)}
        if base in MATRIX:  # the folder of cells or rungs (test above) stands for every member's summary
            folder, run, names = MATRIX[base]
            members = {str(run(c).summary) for c in names(params)}
            assert str(folder) in stage["deps"] and members <= expected
            expected -= members
        assert small == expected, name


def code_mismatches(graph: dict[str, dict]) -> list[str]:
    return [
        name
        for name, stage in graph.items()
        if [d for d in stage["deps"] if d.startswith("src/")] != list(stamps.code_files(name.partition("@")[0]))
    ]


def test_snakemake_rules_take_exactly_the_modules_each_stage_runs(built, tmp_path):
    """The inputs Snakemake recorded for each job hold the stage's code files, no more, no fewer."""
    assert code_mismatches(snakemake_graph(built)) == []
    # the check has teeth: a rule that forgets its code is caught
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(built, broken, symlinks=True)
    rules = broken / "workflow/rules/train.smk"
    rules.write_text(rules.read_text().replace('        code("eval"),\n', "", 1))
    sh("snakemake --cores 1 results/tiny/eval.json", broken)  # the summary reads what a run recorded
    assert {n.partition("@")[0] for n in code_mismatches(snakemake_graph(broken))} == {"eval"}


def test_stage_params_match_what_stages_declare(built):
    dvc = dvc_graph(built)
    for name, stage in dvc.items():
        base, _, size = name.partition("@")
        assert base in dag.STAGES
        assert stage["params"] == sorted(dag.keys(base, size or None)), name
    params = config.load(built / "params.yaml")
    assert {n.partition("@")[2] for n in dvc if "@" in n and not n.startswith(("cell@", "rung@"))} == set(SIZES)
    assert {n.partition("@")[2] for n in dvc if n.startswith("cell@")} == set(params.sweep.cells())
    assert {n.partition("@")[2] for n in dvc if n.startswith("rung@")} == set(params.scaling.rungs())


def test_plots_are_declared_per_size_so_only_sizes_that_exist_are_drawn():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert "plots" not in dvc  # top-level plots name files per size, and a size not built is a load error
    plots = [next(iter(p)) for p in dvc["stages"]["train"]["do"]["plots"]]
    assert plots == [f"results/${{key}}/{metric}.tsv" for metric in paths.RunFiles("x").curves]


def test_gpu_profile_gives_the_one_gpu_to_every_rule_that_uses_it():
    """Rules whose command puts a model on the device (its stage picks one: nn/device.py's pick) hold
    the profile's single `gpu` resource, so two of them never share a card (score next to train would
    not fit a 12 GB GPU)."""
    profile = yaml.safe_load((ROOT / "workflow/profiles/gpu/config.yaml").read_text())
    held = {entry.partition(":")[0] for entry in profile["set-resources"] if entry.endswith(":gpu=1")}
    uses_device = set()
    for rules in (ROOT / "workflow/rules").glob("*.smk"):
        for rule, command in re.findall(r'^rule (\w+):.*?"ladder (\w+)', rules.read_text(), re.S | re.M):
            module = ROOT / "src/ladder/stages" / f"{dag.STAGES[command].module}.py"
            if "dev.pick()" in module.read_text():
                uses_device.add(rule)
    assert uses_device == {"score", "train", "cell", "rung", "replica", "arm", "eval"}
    assert held == uses_device
