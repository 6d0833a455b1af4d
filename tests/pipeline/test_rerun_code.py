"""The rerun rules for source files and the tools' own records: an edit reruns exactly the stages
whose code it touches, timestamps alone rerun nothing, and a project DVC built from nothing is done
for Snakemake too. Real runs under both tools."""

from __future__ import annotations

import os
import random
from pathlib import Path

from conftest import SIZES, all_targets, cells, dvc_changed, dvc_ran, edit_params, per_size, planned, rungs, sh

from ladder.pipeline import stamps


def test_dvc_repro_leaves_snakemake_nothing_to_do(fresh):
    sh("dvc repro", fresh)
    assert planned(fresh, *all_targets()) == {}
    # and a params change after a DVC-built result still reaches Snakemake
    edit_params(fresh, lambda p: p["sizes"]["mini"].update(n_layer=2))
    assert planned(fresh, *all_targets()) == {"predict": 1, "train": 1, "eval": 1}


def test_timestamps_alone_rerun_nothing(project):
    sh("dvc checkout --relink --force", project)
    files = [f for f in project.rglob("*") if f.is_file() and ".git" not in f.parts and ".dvc" not in f.parts]
    random.Random(0).shuffle(files)
    for i, f in enumerate(files):  # new mtimes, in an order unrelated to the DAG
        os.utime(f, (1e9 + i, 2e9 - i))
    assert planned(project, *all_targets()) == {}
    assert dvc_changed(project) == set()


def runs_loader() -> dict[str, int]:
    """Snakemake's job counts for the stages that run nn/loader.py (from their import closures)."""
    jobs: dict[str, int] = {}
    for stage in ("curriculum", "score", "train", "eval", "cell", "rung"):
        assert "src/ladder/nn/loader.py" in stamps.code_files(stage)
        jobs[stage] = {"train": len(SIZES), "eval": len(SIZES), "cell": len(cells()), "rung": len(rungs())}.get(
            stage, 1
        )
    # the reports of the retrained cells and rungs, and the predictions from the new fit
    return jobs | {"sweep": 1, "fit": 1, "predict": len(SIZES)}


def edit_source(project: Path, rel: str) -> None:
    path = project / rel
    path.write_text(path.read_text() + "\n# an edit\n")


def test_editing_the_loader_reruns_what_runs_it_under_both_tools(project):
    """Snakemake plans the stages whose import closure holds the loader, and what follows them; DVC's
    status names the same stages, and its run reaches the reports and predictions after them, so
    Snakemake has nothing left to do."""
    edit_source(project, "src/ladder/nn/loader.py")
    assert planned(project, *all_targets()) == runs_loader()
    stages = {"curriculum", "score"} | per_size("train") | per_size("eval") | cells() | rungs()
    assert dvc_changed(project) == stages
    # their inputs, the folders of cells and rungs, change only once those rerun
    stages |= {"sweep", "fit"} | per_size("predict")
    assert dvc_ran(sh("dvc repro", project).stdout) == stages
    assert planned(project, *all_targets()) == {} and dvc_changed(project) == set()


def test_editing_a_tool_reruns_no_stage(project):
    for tool in ("src/ladder/tools/generate.py", "src/ladder/tools/sanity.py", "src/ladder/pipeline/progress.py"):
        edit_source(project, tool)
    assert planned(project, *all_targets()) == {}
    assert dvc_changed(project) == set()
