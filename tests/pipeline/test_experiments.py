"""DVC experiments: `dvc exp run -S`, `dvc exp show` with eval metrics, `dvc plots diff` of each size's loss curves,
and what a change of `lr` reruns under both tools."""

from __future__ import annotations

import json

from conftest import SIZES, all_targets, dvc_changed, dvc_ran, edit_params, per_size, planned, rungs, sh


def test_an_lr_experiment_reruns_all_training_but_no_data_stage_and_shows_and_plots(project):
    """...and no sweep cell: a cell's lr is in its name, not read from `lr`. The rungs train with the
    shipped recipe, so they rerun, and the fit and every prediction after them; tiny's new model
    rescores the documents medium trains on."""
    sh("git add -A && git commit -qm 'pipeline built'", project)
    edit_params(project, lambda p: p.update(lr=0.002))  # what both tools would rerun, before the experiment
    assert planned(project, *all_targets()) == {
        "train": len(SIZES),
        "eval": len(SIZES),
        "score": 1,
        "rung": len(rungs()),
        "fit": 1,
        "predict": len(SIZES),
    }
    assert dvc_changed(project) == per_size("train") | rungs()
    sh("git checkout -q -- params.yaml", project)

    out = sh("dvc exp run -S lr=0.002 -n lr-test", project).stdout
    assert dvc_ran(out) == per_size("train") | per_size("eval") | per_size("predict") | {"score", "fit"} | rungs()
    assert planned(project, *all_targets()) == {}  # the experiment's workspace is done for Snakemake too

    rows = json.loads(sh("dvc exp show --json", project).stdout)
    exps = [e for row in rows for e in (row.get("experiments") or []) if e.get("name") == "lr-test"]
    assert len(exps) == 1
    data = exps[0]["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["lr"] == 0.002
    metrics = data["metrics"]
    for s in SIZES:
        assert metrics[f"results/{s}/eval.json"]["data"]["val_loss"] > 0

    plots = json.loads(sh("dvc plots diff HEAD lr-test --json", project).stdout)["data"]
    # a chart per size and loss, each with both runs; no chart for a size not built
    assert set(plots) == {f"results/{s}/{m}.tsv" for s in SIZES for m in ("loss", "val_loss")}
    for name, (chart,) in plots.items():
        assert {v["rev"] for v in chart["content"]["data"]["values"]} == {"HEAD", "lr-test"}, name
