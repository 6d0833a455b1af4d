"""Training: outputs, metrics, the curriculum followed, and bitwise resume after kill -9."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import pytest
from conftest import ENV, edit_params, sh


def test_train_and_eval_outputs(built):
    out = built / "results/tiny"
    summary = json.loads((out / "train.json").read_text())
    ev = json.loads((out / "eval.json").read_text())
    prov = json.loads((out / "eval_provenance.json").read_text())
    assert summary["tokens"] == 4096 and summary["steps"] == 4
    # eval.json: the headline numbers only, one dvc exp show column each
    assert set(ev) == {
        "val_loss",
        "val_bits_per_byte",
        "cloze",
        "tokens_trained",
        "train_seconds",
        "predicted_val_loss",
        "prediction_error",
    }
    assert all(isinstance(v, (int, float)) for v in ev.values())
    for key in (
        "val",
        "extra",
        "cloze",
        "params_non_embedding",
        "train_flops",
        "samples",
        "git_commit",
        "data_sha256",
        "params_used",
        "built_from",
    ):
        assert key in prov, key
    assert prov["val"]["loss"] == ev["val_loss"] and prov["val"]["perplexity"] > 1
    assert prov["params"] > prov["params_non_embedding"] > 0 and prov["train_tokens_per_s"] > 0
    assert {s["mode"] for s in prov["samples"]} == {"greedy", "sampled"}
    assert prov["cloze"]["items"] == 20 and prov["cloze"]["chance"] == 0.25
    assert ev["cloze"] == prov["cloze"]["accuracy"] and 0 <= ev["cloze"] <= 1
    assert prov["train_flops"] > 0
    loss = (out / "live/plots/metrics/loss.tsv").read_text().splitlines()
    assert loss[0].split("\t") == ["step", "loss"]
    assert [int(r.split("\t")[0]) for r in loss[1:]] == [1024, 2048, 3072, 4096]  # step = tokens seen
    # the same curves in the files dvc.yaml declares as the size's plots (val loss every 2 steps)
    assert (out / "loss.tsv").read_text().splitlines()[0] == "tokens\tloss"
    val = (out / "val_loss.tsv").read_text().splitlines()
    assert val[0] == "tokens\tval_loss" and [int(r.split("\t")[0]) for r in val[1:]] == [2048, 4096]


def test_extra_heldout_sets_are_scored_like_val(project):
    (project / "extra.txt").write_text("\n\n".join(["The city of Rome was founded long ago."] * 50))
    edit_params(project, lambda p: p["eval"].update(extra={"rome": "extra.txt"}))
    sh("ladder eval --size tiny", project)
    extra = json.loads((project / "results/tiny/eval_provenance.json").read_text())["extra"]["rome"]
    assert extra["bits_per_byte"] > 0 and extra["tokens_scored"] > 0


def test_training_follows_the_curriculum_warmup(project):
    edit_params(
        project,
        lambda p: p["curriculum"].update(warmup=[{"seq_len": 16, "share": 0.25}, {"seq_len": 32, "share": 0.25}]),
    )
    sh("ladder curriculum && ladder train --size tiny", project)
    phases = json.loads((project / "results/tiny/train.json").read_text())["curriculum"]["phases"]
    assert phases == [[16, 1024], [32, 2048], [64, 4096]]


def _train_until_killed(project, at_step: int) -> None:
    proc = subprocess.Popen(
        "exec ladder train --size tiny",
        shell=True,
        cwd=project,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = project / "results/tiny/ckpt/state.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if state.exists() and json.loads(state.read_text())["step"] >= at_step:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "training finished before it could be killed"


@pytest.mark.parametrize("optimizer", ["muon", "adamw"])  # the checkpoint holds either's state
def test_resume_after_kill_is_bitwise_identical(project, optimizer):
    edit_params(project, lambda p: p["sizes"]["tiny"].update(n_embd=64, n_layer=2, train={"tokens": 40960}))
    edit_params(project, lambda p: p["train"].update(checkpoint_every=5, optimizer=optimizer))
    sh("ladder train --size tiny", project)
    reference = json.loads((project / "results/tiny/train.json").read_text())
    sh("rm -rf results/tiny", project)

    _train_until_killed(project, at_step=10)
    assert not (project / "results/tiny/model.safetensors").exists()
    resumed = sh("ladder train --size tiny", project)
    assert re.search(r"resuming from step \d+ of 40", resumed.stderr), resumed.stderr
    final = json.loads((project / "results/tiny/train.json").read_text())
    assert final["model_sha256"] == reference["model_sha256"]
    rows = (project / "results/tiny/live/plots/metrics/loss.tsv").read_text().splitlines()[1:]
    assert len(rows) == 40  # the curve before the kill was kept


def test_checkpoint_of_other_params_is_not_resumed(project):
    edit_params(project, lambda p: p["sizes"]["tiny"].update(n_embd=64, n_layer=2, train={"tokens": 40960}))
    _train_until_killed(project, at_step=5)
    edit_params(project, lambda p: p.update(lr=0.001))
    p = sh("ladder train --size tiny", project)
    assert "ignoring checkpoint" in p.stderr and "resuming" not in p.stderr


def test_plan_covers_every_size_and_device(built):
    out = sh("ladder plan", built).stdout
    for column in (
        "params",
        "non-emb",
        "GFLOP/tok",
        "tokens",
        "PFLOP",
        "mem GiB",
        "w/ ckpt",
        "RTX 4070",
        "RTX 3090",
        "A100",
        "H100",
    ):
        assert column in out
    rows = {line.split()[0] for line in out.splitlines()[2:]}
    assert rows == {"tiny", "mini", "small", "medium"}


def test_train_refuses_runs_that_cannot_fit_or_take_too_long(project):
    edit_params(project, lambda p: p["sizes"]["tiny"]["train"].update(max_hours=1e-9))
    p = sh("ladder train --size tiny", project, check=False)
    assert p.returncode == 1 and "exceeds train.max_hours" in p.stderr.splitlines()[-1]
    edit_params(
        project, lambda p: p["sizes"]["tiny"]["train"].update(max_hours=1, micro_batch=10**7, batch_tokens=64 * 10**7)
    )
    p = sh("ladder train --size tiny", project, check=False)
    assert p.returncode == 1 and "activation_checkpointing" in p.stderr.splitlines()[-1]
    assert (project / "results/tiny/model.safetensors").exists()  # the earlier result is intact


def test_layer_statistics_are_logged_and_plotted(built, tmp_path):
    import pandas as pd

    stats = pd.read_csv(built / "results/tiny/live/layer_stats.tsv", sep="\t")
    assert set(stats.kind) == {"activation", "gradient"} and set(stats.layer) == {0}
    assert list(stats.tokens.unique()) == [1024, 2048, 3072, 4096]
    assert (stats.rms > 0).all() and stats.near_zero.between(0, 1).all()
    assert "layer_stats.png" in sh("ladder layer-stats --size tiny", built).stdout
    assert (built / "results/tiny/layer_stats.png").stat().st_size > 10_000
    assert "curves.png" in sh("ladder curves", built).stdout
