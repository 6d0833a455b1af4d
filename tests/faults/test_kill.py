"""SIGKILL at seeded random points of every stage: the outputs that existed are intact, and the
next run ends bitwise equal to an uninterrupted one, leaving no temporary file. Training resumes
from its last checkpoint (every 3 of 12 steps here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import ENV
from faultlib import HERE, copy

TINY = "results/tiny"
# stage: (command, kills, outputs compared with the uninterrupted run, outputs a killed run may rewrite);
# each killed training run starts from scratch (its checkpoint cleared first)
STAGES = {
    "download": (["download"], 2, ["data/raw"], []),
    "subset": (["subset"], 2, ["data/subset"], []),
    "tokenizer": (["tokenizer"], 2, ["data/tokenizer"], []),
    "shard": (["shard"], 2, ["data/shards"], []),
    "curriculum": (["curriculum"], 2, ["data/curriculum/base"], []),
    # the train stage's curves (live/) and checkpoint are rewritten as it goes, by design
    "train": (
        ["train", "--size", "tiny", "--params", "long.yaml"],
        10,
        [f"{TINY}/model.safetensors", f"{TINY}/config.json", f"{TINY}/train.json", f"{TINY}/ckpt/model.safetensors"],
        [f"{TINY}/ckpt", f"{TINY}/live"],
    ),
    "eval": (["eval", "--size", "tiny"], 2, [f"{TINY}/eval.json", f"{TINY}/samples.md"], []),
    "score": (["score"], 2, ["data/curriculum/scored"], []),
}
CASES = [(stage, k) for stage, (_, n, _, _) in STAGES.items() for k in range(n)]


@pytest.fixture(scope="module")
def kills(faults_base, tmp_path_factory):
    project = copy(faults_base, tmp_path_factory, "kills")
    params = yaml.safe_load((project / "params.yaml").read_text())
    # 12 steps, a checkpoint every 3; curves every 4 steps
    params["sizes"]["tiny"]["train"] = {"tokens": 12288, "checkpoint_every": 3, "log_every": 4, "eval_every": 4}
    (project / "long.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    plan = [
        {
            "stage": s,
            "argv": argv,
            "kills": n,
            "seed": 16 + i,
            "outputs": outs,
            "volatile": volatile,
            "clear": [f"{TINY}/ckpt"] if s == "train" else [],
            # a kill within the run, not after it; training's: after 0, 3 or 6 of its 12 steps, then up
            # to a few steps more (a step takes a few hundredths of a second here). Not after 9: on a busy
            # machine that kill can land after the final results were renamed into place, a complete
            # newer train.json that is no loss but is not byte-identical either
            "window": [0.0, 0.05] if s == "train" else [0.0, 0.6],
        }
        | ({"checkpoints": {"state": f"{TINY}/ckpt/state.json", "steps": [0, 3, 6]}} if s == "train" else {})
        for i, (s, (argv, n, outs, volatile)) in enumerate(STAGES.items())
    ]
    (project / ".faults-plan.json").write_text(json.dumps(plan))
    p = subprocess.run(
        [sys.executable, str(HERE / "killer.py"), ".faults-plan.json"],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads((project / ".faults-kills.json").read_text())


@pytest.mark.parametrize("stage, k", CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_a_killed_stage_loses_nothing_and_reruns_to_the_same_result(kills, stage, k):
    case = kills[stage][k]
    if not case["killed"]:  # a stage of a tenth of a second can finish before its seeded kill on a busy machine
        pytest.skip(f"the run ended before the kill at {case['delay']}s of {case['of']}s")
    assert case["lost"] == [], case["lost"]
    assert case["rc"] == 0, case["log"]
    assert case["same"], case["log"]
    assert case["temps"] == [], case["temps"]


def test_killed_training_resumes_from_a_checkpoint(kills):
    """At least some kills land after a checkpoint, and those runs resume from it."""
    assert sum(c["resumed_from"] > 0 for c in kills["train"]) >= 3, [c["resumed_from"] for c in kills["train"]]
