"""Sharing results through a DVC remote, and experiments queued and run in parallel copies."""

from __future__ import annotations

import json
import time

from conftest import SIZES, all_targets, dvc_changed, planned, sh


def test_a_fresh_clone_pulls_the_results_and_plans_nothing(project, tmp_path):
    sh(f"dvc remote add -d shared {tmp_path / 'remote'} && git add -A && git commit -qm 'results, shared'", project)
    sh("dvc push", project)
    clone = tmp_path / "clone"
    sh(f"git clone -q {project} {clone}", tmp_path)
    assert not (clone / "results/tiny/model.safetensors").exists()
    sh("dvc pull", clone)
    for size in SIZES:
        assert (clone / f"results/{size}/model.safetensors").read_bytes() == (
            project / f"results/{size}/model.safetensors"
        ).read_bytes()
    assert dvc_changed(clone) == set()
    assert planned(clone, *all_targets()) == {}


def test_queued_experiments_run_in_their_own_copies(project):
    sh("git add -A && git commit -qm 'pipeline built'", project)
    for name, tokens in (("q-short", 6144), ("q-long", 8192)):  # mini's chain alone reruns
        sh(f"dvc exp run --queue -S sizes.mini.train.tokens={tokens} -n {name}", project)
    before = (project / "results/mini/model.safetensors").read_bytes()
    sh("dvc queue start -j 2", project)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = sh("dvc queue status", project).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert "Failed" not in status, status
    assert (project / "results/mini/model.safetensors").read_bytes() == before  # the workspace is untouched
    rows = json.loads(sh("dvc exp show --json", project).stdout)
    exps = {e["name"]: e["revs"][0]["data"] for row in rows for e in (row.get("experiments") or [])}
    assert {"q-short", "q-long"} <= set(exps)
    metrics = {name: exps[name]["metrics"]["results/mini/eval.json"]["data"] for name in ("q-short", "q-long")}
    assert {name: m["tokens_trained"] for name, m in metrics.items()} == {"q-short": 6144, "q-long": 8192}
    assert metrics["q-short"]["val_loss"] != metrics["q-long"]["val_loss"]
