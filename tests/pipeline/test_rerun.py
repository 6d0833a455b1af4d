"""The rerun rules for params, each checked under Snakemake and under DVC with real runs (source edits
and timestamps: test_rerun_code.py)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import SIZES, all_targets, cells, dvc_changed, dvc_ran, edit_params, per_size, planned, rungs, sh


def snapshot(project: Path) -> dict[str, bytes]:
    """Every output file's bytes, to prove untouched results stay byte-identical."""
    out = {}
    for folder in ("data", "results"):
        for f in sorted((project / folder).rglob("*")):
            if f.is_file() and "embedded" not in f.parts and f.name != ".snakemake_timestamp":
                out[str(f.relative_to(project))] = f.read_bytes()
    return out


def changed_files(before: dict, after: dict) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def test_snakemake_run_leaves_dvc_up_to_date_and_plans_nothing(built):
    assert planned(built, *all_targets()) == {}
    assert dvc_changed(built) == set()


def test_size_change_reruns_only_that_size_under_snakemake(project):
    edit_params(project, lambda p: p["sizes"]["medium"].update(n_embd=48))
    assert planned(project, *all_targets()) == {"predict": 1, "train": 1, "eval": 1}
    before = snapshot(project)
    sh(f"snakemake --cores 1 {' '.join(all_targets())}", project)
    touched = changed_files(before, snapshot(project))
    assert touched and all(f.startswith("results/medium/") for f in touched), touched
    assert dvc_changed(project) == set()


def test_size_change_reruns_only_that_size_under_dvc(project):
    edit_params(project, lambda p: p["sizes"]["medium"].update(n_embd=48))
    # status names the stages whose own inputs changed
    assert dvc_changed(project) == {"predict@medium", "train@medium"}
    before = snapshot(project)
    ran = dvc_ran(sh("dvc repro", project).stdout)
    assert ran == {"predict@medium", "train@medium", "eval@medium"}
    touched = changed_files(before, snapshot(project))
    assert all(f.startswith("results/medium/") for f in touched), touched
    assert planned(project, *all_targets()) == {}


def test_a_sizes_own_lr_reruns_that_size_alone_and_trains_at_it(project):
    """sizes.<name>.train.lr: the rungs, and so the fit, keep the shared lr."""
    edit_params(project, lambda p: p["sizes"]["medium"]["train"].update(lr=0.001))
    assert planned(project, *all_targets()) == {"predict": 1, "train": 1, "eval": 1}
    assert dvc_changed(project) == {"predict@medium", "train@medium"}
    assert dvc_ran(sh("dvc repro train@medium", project).stdout) == {"train@medium"}  # a prediction is no input
    assert json.loads((project / "results/medium/train.json").read_text())["lr"] == 0.001
    assert json.loads((project / "results/mini/train.json").read_text())["lr"] == 0.003


def test_vocab_change_reruns_tokenizer_and_everything_downstream(project):
    """Planned in full by both tools; DVC then rebuilds one size's chain through every kind of stage
    between the tokenizer and that size's eval, and Snakemake still plans the rest."""
    edit_params(project, lambda p: p["tokenizer"].update(vocab_size=400))
    downstream = {
        "tokenizer": 1,
        "shard": 1,
        "curriculum": 1,
        "score": 1,
        "train": len(SIZES),
        "eval": len(SIZES),
        "cell": len(cells()),
        "sweep": 1,
        "rung": len(rungs()),
        "fit": 1,
        "predict": len(SIZES),
    }
    assert planned(project, *all_targets()) == downstream
    assert dvc_changed(project) == {"tokenizer"}
    # medium trains on the order tiny's model scores: its chain holds every stage kind but the sweep's
    ran = dvc_ran(sh("dvc repro eval@medium", project).stdout)
    assert ran == (
        {"tokenizer", "shard", "curriculum", "score", "fit", "predict@medium", "eval@medium"}
        | per_size("train", ["tiny", "medium"])
        | rungs()
    )
    assert json.loads((project / "data/tokenizer/report.json").read_text())["vocab_size"] == 400
    assert planned(project, *all_targets()) == {
        "cell": len(cells()),
        "sweep": 1,
        "predict": 2,
        "train": 1,
        "eval": 2,
    }  # mini's chain, tiny's prediction and eval, the sweep


def test_retraining_the_scorer_rescores_and_retrains_only_the_scored_sizes(project):
    """The DAG edge train@tiny -> score -> train@medium, in both tools; mini (base plan) stays."""
    edit_params(project, lambda p: p["sizes"]["tiny"].update(n_embd=48))
    assert planned(project, *all_targets()) == {"predict": 1, "train": 2, "eval": 2, "score": 1}
    assert dvc_changed(project) == {"predict@tiny", "train@tiny"}
    before = snapshot(project)
    ran = dvc_ran(sh("dvc repro", project).stdout)
    assert ran == {"predict@tiny", "train@tiny", "eval@tiny", "score", "train@medium", "eval@medium"}
    touched = changed_files(before, snapshot(project))
    assert not any(f.startswith("results/mini/") for f in touched), touched
    assert "data/curriculum/scored/order.npy" in touched or "data/curriculum/scored/scores.npy" in touched
    assert planned(project, *all_targets()) == {}


def test_moving_a_size_to_the_scored_plan_retrains_it(project):
    edit_params(project, lambda p: p["pipeline"]["sizes"].update(mini="scored"))
    assert planned(project, *all_targets()) == {"train": 1, "eval": 1}
    assert dvc_changed(project) == {"train@mini"}
    sh(f"snakemake --cores 1 {' '.join(all_targets())}", project)
    assert json.loads((project / "results/mini/train.json").read_text())["curriculum"]["plan"] == "scored"
    assert dvc_changed(project) == set()


def test_params_round_trip_through_an_experiment_makes_both_tools_plan_training(project):
    """Built by Snakemake with mini at 1 layer; an experiment trains it at 2 in the workspace;
    params.yaml goes back to 1: results/ holds a 2-layer mini, so both tools must plan its training.
    Back at 2, both plan nothing: each judges the outputs by what they were built from."""
    sh("git add -A && git commit -qm 'pipeline built'", project)
    layers = yaml.safe_load((project / "params.yaml").read_text())["sizes"]["mini"]["n_layer"]
    sh(f"dvc exp run -S sizes.mini.n_layer={layers + 1}", project)
    sh("git checkout params.yaml", project)
    assert yaml.safe_load((project / "params.yaml").read_text())["sizes"]["mini"]["n_layer"] == layers
    assert planned(project, *all_targets()) == {"predict": 1, "train": 1, "eval": 1}
    assert dvc_changed(project) == {"predict@mini", "train@mini"}
    edit_params(project, lambda p: p["sizes"]["mini"].update(n_layer=layers + 1))
    assert planned(project, *all_targets()) == {}
    assert dvc_changed(project) == set()


def test_params_round_trip_through_dvc_repro(project):
    edit_params(project, lambda p: p["sizes"]["mini"].update(n_embd=48))
    assert dvc_ran(sh("dvc repro", project).stdout) == {"predict@mini", "train@mini", "eval@mini"}
    edit_params(project, lambda p: p["sizes"]["mini"].update(n_embd=32))  # back to what Snakemake built
    assert planned(project, *all_targets()) == {"predict": 1, "train": 1, "eval": 1}
    assert dvc_changed(project) == {"predict@mini", "train@mini"}
