"""DVC experiments: `dvc exp run -S`, `dvc exp show` with eval metrics, `dvc plots diff` of each size's loss curves."""

from __future__ import annotations

import json

from conftest import SIZES, dvc_ran, rungs, sh


def test_experiment_run_show_and_plots(project):
    sh("git add -A && git commit -qm 'pipeline built'", project)
    out = sh("dvc exp run -S lr=0.002 -n lr-test", project).stdout
    # every size retrains; tiny's new model rescores the documents medium trains on; the rungs train
    # on the shipped lr too, so the fit and every prediction follow them
    assert dvc_ran(out) == (
        {f"{stage}@{s}" for stage in ("train", "eval", "predict") for s in SIZES} | {"score", "fit"} | rungs()
    )

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
