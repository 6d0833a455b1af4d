"""Data-parallel training on the CPU: 2 gloo processes under torchrun against 1 process, the same
global batch; a killed 2-process run resumes; FSDP2 trains like DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from conftest import ENV, edit_params, sh

TOLERANCE = 1e-4  # relative, per logged loss: the reduction order of the gradient sum differs, nothing else


def longer(project, **train):
    edit_params(
        project,
        lambda p: (
            p["sizes"]["tiny"].update(n_embd=64, n_layer=2, train={"tokens": 16384}),
            p["train"].update(checkpoint_every=4, **train),
        ),
    )


def losses(project) -> pd.Series:
    return pd.read_csv(project / "results/tiny/live/plots/metrics/loss.tsv", sep="\t").set_index("step")["loss"]


@pytest.mark.parametrize("optimizer", ["muon", "adamw"])
def test_two_processes_train_like_one(project, optimizer):
    longer(project, optimizer=optimizer)
    sh("ladder train --size tiny", project)
    one = losses(project)
    longer(project, devices=2, optimizer=optimizer)
    out = sh("ladder train --size tiny", project)
    assert "x 2 (ddp)" in out.stderr
    two = losses(project)
    assert list(two.index) == list(one.index) and len(one) == 16
    assert ((two - one).abs() / one).max() < TOLERANCE, pd.DataFrame({"one": one, "two": two})
    summary = json.loads((project / "results/tiny/train.json").read_text())
    assert summary["devices"] == 2 and summary["parallel"] == "ddp"
    if optimizer == "muon":  # Muon needs whole matrices: no FSDP (config refuses it)
        return
    longer(project, devices=2, parallel="fsdp", optimizer=optimizer)
    sh("ladder train --size tiny", project)
    assert ((losses(project) - one).abs() / one).max() < TOLERANCE
    sh("ladder eval --size tiny", project)  # the gathered model is a plain one


def test_killed_two_process_run_resumes_where_it_would_have_ended(project):
    longer(project, devices=2)
    sh("ladder train --size tiny", project)
    reference = json.loads((project / "results/tiny/train.json").read_text())["model_sha256"]
    sh("rm -rf results/tiny", project)

    proc = subprocess.Popen(
        "exec ladder train --size tiny",
        shell=True,
        cwd=project,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    state, deadline = project / "results/tiny/ckpt/state.json", time.time() + 300
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["step"] >= 8):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers at once
    proc.wait()
    assert not (project / "results/tiny/model.safetensors").exists(), "finished before the kill"
    out = sh("ladder train --size tiny", project)
    assert "resuming from step" in out.stderr
    assert json.loads((project / "results/tiny/train.json").read_text())["model_sha256"] == reference


@pytest.mark.parametrize("devices", [3])
def test_batch_that_does_not_split_over_the_devices_is_refused(project, devices):
    edit_params(project, lambda p: p["train"].update(devices=devices))
    p = sh("ladder train --size tiny", project, check=False)
    assert p.returncode == 1 and "micro_batch x seq_len x devices" in p.stderr
