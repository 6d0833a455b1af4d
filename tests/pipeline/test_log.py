"""`ladder log`: a row per evaluated size and per size a real DVC experiment rebuilt, with the params
that differ from the baseline, every number as the runs' own files hold it."""

from __future__ import annotations

import csv
import json
import time

from conftest import SCALING, SIZES, sh, shrunk_rungs

NUMBERS = [
    "n_params",
    "tokens",
    "flops",
    "train_seconds",
    "val_loss",
    "val_bits_per_byte",
    "predicted_val_loss",
    "predicted_low",
    "predicted_high",
    "prediction_error",
    "beyond_tested",
    "difference",  # a comparison's (`ladder compare`): empty here, where none was made
    "verdict",
]


def logged(project) -> list[dict]:
    with open(project / "results/log.csv") as f:
        return list(csv.DictReader(f))


def same(row: dict, key: str, value) -> bool:
    """A CSV cell against the value a run's file holds (blank: none)."""
    return row[key] == "" if value is None else type(value)(row[key]) == value


def test_log_rows_are_the_sizes_and_the_experiment_with_its_lr(project, tmp_path):
    sh("git add -A && git commit -qm 'pipeline built'", project)
    head = sh("git rev-parse HEAD", project).stdout.strip()[:7]
    sh("dvc exp run -S lr=0.002 -n lr-tiny eval@tiny", project)  # retrains tiny only: mini and medium carried
    shown = json.loads(sh("dvc exp show --json", project).stdout)
    exp = next(e for row in shown for e in row.get("experiments") or [] if e["name"] == "lr-tiny")
    exp_tiny = exp["revs"][0]["data"]["metrics"]["results/tiny/eval.json"]["data"]
    sh("git checkout -q -- params.yaml dvc.lock && dvc checkout -q", project)  # the workspace back at the baseline

    t0 = time.time()
    p = sh("ladder log", project)
    took = time.time() - t0
    rows = logged(project)
    # the one param that differs is lr; the experiment's untouched sizes are not rows of it; every
    # scaling rung is a row, with no size
    assert list(rows[0]) == ["run", "kind", "size", "commit", "lr", *NUMBERS, "changes"]
    assert sorted((r["run"], r["kind"], r["size"]) for r in rows) == sorted(
        [(s, "size", s) for s in SIZES] + [("lr-tiny", "exp", "tiny")] + [(r, "rung", "") for r in shrunk_rungs()]
    )
    fit = {r["rung"]: r for r in json.loads((project / "results/scaling/fit.json").read_text())["rungs"]}
    for r in (r for r in rows if r["kind"] == "rung"):
        train = json.loads((project / "results/scaling/rungs" / r["run"] / "train.json").read_text())
        assert same(r, "val_loss", train["final_val_loss"]) and same(r, "tokens", train["tokens"]), r["run"]
        held = r["run"] in SCALING["holdout"]  # only a held-out rung shows the fit's prediction of it
        assert same(r, "predicted_val_loss", fit[r["run"]]["fitted"] if held else None), r["run"]
        assert same(r, "prediction_error", fit[r["run"]]["error"] if held else None), r["run"]
    for r in (r for r in rows if r["kind"] != "rung"):
        size = project / "results" / r["size"]
        ev = json.loads((size / "eval.json").read_text())
        prov = json.loads((size / "eval_provenance.json").read_text())
        assert r["commit"] == head  # the experiment's baseline, and the workspace's clean HEAD
        if r["kind"] == "size":
            assert float(r["lr"]) == json.loads((size / "train.json").read_text())["lr"] == 0.003
            for key, value in [
                ("n_params", prov["params"]),
                ("tokens", ev["tokens_trained"]),
                ("flops", prov["train_flops"]),
                ("train_seconds", ev["train_seconds"]),
                ("val_loss", ev["val_loss"]),
                ("val_bits_per_byte", ev["val_bits_per_byte"]),
                ("predicted_val_loss", ev.get("predicted_val_loss")),
                ("prediction_error", ev.get("prediction_error")),
            ]:
                assert same(r, key, value), (r["run"], key)
        else:  # as `dvc exp show` has the experiment's eval.json, not the workspace's
            assert float(r["lr"]) == 0.002
            for key in ("val_loss", "val_bits_per_byte", "train_seconds"):
                assert same(r, key, exp_tiny[key]), key
            assert same(r, "tokens", exp_tiny["tokens_trained"])
            assert float(r["val_loss"]) != ev["val_loss"]  # another run than the workspace's tiny
            assert same(r, "flops", prov["train_flops"])  # the same shape and tokens as the workspace's tiny

    # printed: one changes column, within the 120 columns of a terminal (and of a pipe)
    out = p.stdout.splitlines()
    assert out[0].split()[:4] == ["run", "kind", "size", "changes"] and len(out) == 1 + len(rows)
    assert max(map(len, out)) <= 120
    assert next(line for line in out if line.split()[0] == "lr-tiny").split()[1:4] == ["exp", "tiny", "lr=0.002"]
    assert all(r["changes"] == ("lr=0.002" if r["kind"] == "exp" else "") for r in rows)
    wide = sh("ladder log --wide", project).stdout.splitlines()
    assert wide[0].split()[:5] == ["run", "kind", "size", "commit", "lr"] and len(wide) == 1 + len(rows)
    assert "predicted_val_loss" not in wide[0] or any(r["predicted_val_loss"] for r in rows)  # empty columns unprinted
    assert next(line for line in wide if line.split()[0] == "lr-tiny").split()[1:5] == ["exp", "tiny", head, "0.002"]
    md = (project / "results/log.md").read_text()
    assert md.startswith("# Experiment log") and "| lr-tiny " in md and "| lr " in md
    assert not list((project / "results").glob(".log.*"))  # written through temporary siblings, renamed
    assert "log: wrote results/log.csv and results/log.md" in p.stderr
    print(f"ladder log: {took:.1f} s\n{p.stdout}")

    # the sweep's cells on request: training's last val loss, FLOPs from their config.json, which count
    # as eval counts a size's (a w32-d1 cell has tiny's shape)
    sh("ladder log --kinds cell", project)
    cells = logged(project)
    assert {r["kind"] for r in cells} == {"cell"}
    assert len(cells) == len(list((project / "results/sweep/cells").iterdir()))
    tiny = next(r for r in rows if r["run"] == "tiny")
    for r in cells:
        train = json.loads((project / "results/sweep/cells" / r["run"] / "train.json").read_text())
        assert same(r, "val_loss", train["final_val_loss"]) and same(r, "tokens", train["tokens"])
        if r["n_params"] == tiny["n_params"]:
            assert int(r["flops"]) / int(r["tokens"]) == int(tiny["flops"]) / int(tiny["tokens"])

    # a log kept by hand in results/log.md is never replaced
    (project / "results/log.md").write_text("my notes\n")
    p = sh("ladder log", project, check=False)
    assert p.returncode == 1 and "results/log.md: already exists" in p.stderr
    assert (project / "results/log.md").read_text() == "my notes\n"

    # nothing to log: one line naming results/ (after the one saying why no experiment is listed)
    (tmp_path / "empty/results").mkdir(parents=True)
    p = sh("ladder log", tmp_path / "empty", check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 2 and "not a git repository" in lines[0]
    assert lines[1].startswith("ladder log: error: results/: nothing to log")
    assert list((tmp_path / "empty/results").iterdir()) == []


def test_a_prediction_past_the_extrapolation_test_is_flagged_in_its_row():
    from ladder.tools.log import beyond_tested

    past = {"warnings": ["N is 63x ..."], "beyond_rungs": {"N": 63.0, "D": 1.0}, "tested_to": {"N": 2.7, "D": 1.0}}
    assert beyond_tested(past) == "N 63x/2.7x"
    assert beyond_tested(past | {"warnings": []}) is None
    assert beyond_tested(past | {"beyond_rungs": {"N": 1.0, "D": 1.0}}) == "epochs"  # warned for repeats only
