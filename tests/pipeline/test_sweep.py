"""The learning-rate transfer sweep: cells trained by the train stage's code, one report over them,
and reruns that touch only the cells a params change adds or alters."""

from __future__ import annotations

import json
import math

from conftest import SWEEP, cells, dvc_changed, edit_params, planned

from ladder.pipeline.config import CELL, SHAPE


def test_every_cell_trains_its_shape_lr_and_rule_and_the_report_agrees(built):
    sweep = built / "results/sweep"
    report = json.loads((sweep / "optima.json").read_text())
    assert report["cells"] == len(cells()) and report["base_shape"] == "w32-d1"
    assert (sweep / "sweep.png").stat().st_size > 20_000
    losses = {}
    for stage in cells():
        name = stage.removeprefix("cell@")
        shape, rule, lr, seed = CELL.fullmatch(name).groups()
        width, depth = map(int, SHAPE.fullmatch(shape).groups())
        summary = json.loads((sweep / "cells" / name / "train.json").read_text())
        config = json.loads((sweep / "cells" / name / "config.json").read_text())
        assert (summary["lr"], summary["seed"], summary["tokens"]) == (float(lr), int(seed), SWEEP["train"]["tokens"])
        assert (config["n_embd"], config["n_layer"], config["n_head"]) == (width, depth, width // SWEEP["head_dim"])
        assert config["mup"] == config["completep"] == (rule == "mup")
        losses.setdefault((rule, shape), {})[float(lr)] = summary["final_val_loss"]
    assert set(report["optima"]) == set(SWEEP["parametrizations"])
    for rule, shapes in report["optima"].items():
        assert set(shapes) == set(SWEEP["shapes"])
        for shape, best in shapes.items():
            by_lr = losses[(rule, shape)]
            assert best["best_lr"] == min(by_lr, key=by_lr.get)
            assert best["best_val_loss"] == round(min(by_lr.values()), 5)
            assert {float(k): v["mean"] for k, v in best["lrs"].items()} == {k: round(v, 5) for k, v in by_lr.items()}
            assert best["drift_steps"] == round(math.log2(best["best_lr"] / shapes["w32-d1"]["best_lr"]))


def test_a_new_lr_adds_only_its_cells_and_the_report(project):
    edit_params(project, lambda p: p["sweep"].update(lrs=SWEEP["lrs"] + [0.012]))
    new = len(SWEEP["shapes"]) * len(SWEEP["parametrizations"]) * len(SWEEP["seeds"])
    assert planned(project, "results/sweep/optima.json") == {"cell": new, "sweep": 1}
    changed = dvc_changed(project)
    assert changed == {c for c in changed if c.endswith("-0.012-1")} | {"sweep"} and len(changed) == new + 1


def test_the_shared_train_block_reruns_every_cell(project):
    edit_params(project, lambda p: p["train"].update(weight_decay=0.05))
    assert planned(project, "results/sweep/optima.json") == {"cell": len(cells()), "sweep": 1}
    assert cells() <= dvc_changed(project)
