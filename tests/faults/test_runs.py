"""Faults around whole runs: Snakemake after a damaged or killed stage, locks, leftovers of killed
processes, Ctrl-C, an offline hub. Each case runs the real commands in its own copy of the project."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ENV, edit_params, planned, rungs, sh
from faultlib import changed, hold, hold_run, last_line, snapshot, temps

MODEL = "results/tiny/model.safetensors"


def ladder(project: Path, cmd: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return sh(f"ladder {cmd}", project, check=False, env=env)


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_snakemake_plans_nothing_on_outputs_ladder_built(faults_project):
    assert planned(faults_project, "results/tiny/eval.json") == {}


def test_snakemake_reruns_training_when_the_model_is_truncated(faults_project):
    with open(faults_project / MODEL, "r+b") as f:
        f.truncate(5000)
    assert planned(faults_project, "results/tiny/eval.json") == {"train": 1, "eval": 1}


def test_snakemake_reruns_training_when_the_config_is_edited(faults_project):
    """config.json shapes the model as much as its weights do: train.json's sha256 of it is checked too."""
    config = faults_project / "results/tiny/config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"rope_theta": 500.0}))
    assert planned(faults_project, "results/tiny/eval.json") == {"train": 1, "eval": 1}


def test_snakemake_reruns_a_stage_killed_under_it_and_what_follows(faults_project):
    edit_params(faults_project, lambda p: p["shard"].update(shard_tokens=50_000))
    run = subprocess.Popen(
        "exec snakemake --cores 1 data/shards/index.json",
        shell=True,
        cwd=faults_project,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid = None
    while pid is None and run.poll() is None:
        # the stage's own process (python), not the shell around it that logs its output
        out = subprocess.run(["pgrep", "-f", r"python[0-9.]* \S*/ladder shard$"], capture_output=True, text=True)
        ours = [
            int(p) for p in out.stdout.split() if os.path.realpath(f"/proc/{p}/cwd") == str(faults_project.resolve())
        ]
        pid = ours[0] if ours else None
        time.sleep(0.02)
    assert pid, "the shard job never started"
    while not temps(faults_project) and run.poll() is None:  # kill it mid-write, its temp folder on disk
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    assert run.wait() != 0
    assert planned(faults_project, "results/tiny/eval.json") == {
        "shard": 1,
        "curriculum": 1,
        "train": 1,
        "eval": 1,
        "rung": len(rungs()),
        "fit": 1,
        "predict": 1,
    }
    # Snakemake removes the job's outputs but not their temp siblings: the rerun clears the dead one
    sh("snakemake --cores 1 data/shards/index.json", faults_project)
    assert temps(faults_project) == []
    assert planned(faults_project, "data/shards/index.json") == {}


def test_a_second_run_of_a_job_is_refused_naming_the_holder(faults_project):
    holder = hold(faults_project, "curriculum", "ladder curriculum")
    try:
        before = snapshot(faults_project)
        p = ladder(faults_project, "curriculum")
        assert p.returncode == 1
        assert f"locked by PID {holder.pid} running `ladder curriculum`" in last_line(p.stderr), p.stderr
        assert changed(before, snapshot(faults_project)) == [] and temps(faults_project) == []
        assert ladder(faults_project, "subset").returncode == 0  # another job runs meanwhile
    finally:
        holder.kill()
        holder.wait()


def test_a_second_snakemake_is_told_which_run_holds_the_project(faults_project):
    holder = hold(faults_project, "train@tiny", "ladder train --size tiny")
    try:
        before = snapshot(faults_project)
        p = sh("snakemake --cores 1 results/tiny/eval.json", faults_project, check=False)
        assert p.returncode != 0 and "incomplete" not in p.stderr
        assert f"locked by PID {holder.pid} running `ladder train --size tiny`" in p.stderr, p.stderr
        assert changed(before, snapshot(faults_project)) == [] and temps(faults_project) == []
    finally:
        holder.kill()
        holder.wait()


def test_a_second_snakemake_is_told_which_snakemake_holds_the_project(faults_project):
    command = "snakemake --cores 1 results/tiny/eval.json"
    holder = hold_run(faults_project, command)
    try:
        p = sh(command, faults_project, check=False)
        assert p.returncode != 0
        assert f".ladder/locks/project: locked by PID {holder.pid} running `{command}`" in p.stderr, p.stderr
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_lock(faults_project):
    holder = hold(faults_project, "curriculum", "ladder curriculum")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert ladder(faults_project, "curriculum").returncode == 0


def test_temp_siblings_of_dead_processes_are_cleared_and_live_ones_kept(faults_project):
    dead, shards, plan = dead_pid(), faults_project / "data/shards", faults_project / "data/curriculum/base"
    (shards / f".train.tmp-{dead}").mkdir()
    (shards / f".train.tmp-{dead}/train-00000.bin").write_text("half")
    (plan / f".plan.json.tmp-{dead}").write_text("half")
    live = shards / f".index.json.tmp-{os.getpid()}"
    live.write_text("another run's")
    assert sh("ladder shard && ladder curriculum", faults_project, check=False).returncode == 0
    assert temps(faults_project) == [live.relative_to(faults_project).as_posix()]


def test_an_output_set_aside_by_a_killed_rename_is_put_back(faults_project):
    from ladder.pipeline.files import clear_dead_siblings

    manifest = faults_project / "data/raw/manifest.json"
    text = manifest.read_text()
    manifest.rename(manifest.with_name(f".manifest.json.old-{dead_pid()}"))
    clear_dead_siblings(manifest)
    assert manifest.read_text() == text and temps(faults_project) == []


def test_ctrl_c_is_one_line_and_training_resumes(faults_project):
    # 48 steps: the signal lands long after the first checkpoint (step 8), even on a loaded machine
    # (with 12 steps, a run under a full test suite once finished before it)
    edit_params(faults_project, lambda p: p["sizes"]["tiny"].update(train={"tokens": 49152, "checkpoint_every": 8}))
    state = faults_project / "results/tiny/ckpt/state.json"
    old = state.read_text()
    run = subprocess.Popen(
        ["ladder", "train", "--size", "tiny"], cwd=faults_project, env=ENV, stderr=subprocess.PIPE, text=True
    )
    while run.poll() is None and state.read_text() == old:  # the run's first checkpoint
        time.sleep(0.02)
    run.send_signal(signal.SIGINT)
    rest = run.stderr.read()
    assert run.wait() == 130
    assert "Traceback" not in rest and last_line(rest).startswith("ladder train: interrupted"), rest
    assert temps(faults_project) == []
    p = ladder(faults_project, "train --size tiny")
    assert p.returncode == 0 and "resuming from step" in p.stderr, p.stderr


def test_an_offline_hub_fails_at_once(faults_project):
    edit_params(
        faults_project,
        lambda p: (p["data"].update(source="hf"), p["data"]["hf"].update(name="org/corpus", timeout_s=20)),
    )
    before = snapshot(faults_project)
    t0 = time.time()
    p = ladder(faults_project, "download", env={**ENV, "HF_ENDPOINT": "https://hub.nosuch.invalid"})
    assert time.time() - t0 < 10
    assert p.returncode == 1 and "data.hf.name" in last_line(p.stderr) and "hub.nosuch.invalid" in p.stderr, p.stderr
    assert changed(before, snapshot(faults_project)) == [] and temps(faults_project) == []


def test_an_output_folder_that_cannot_be_made_is_named(faults_project):
    """A file where the output's folder should be stands in for a full or read-only disk: the one
    line names the path (an OSError, not a traceback)."""
    folder = faults_project / "data/curriculum/base"
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    folder.write_text("not a folder")
    before = snapshot(faults_project)
    p = ladder(faults_project, "curriculum")
    assert p.returncode == 1 and "data/curriculum/base" in last_line(p.stderr) and "Traceback" not in p.stderr, p.stderr
    assert changed(before, snapshot(faults_project)) == [] and temps(faults_project) == []


@pytest.mark.parametrize(
    "limit, where",
    [(150_000, "results/tiny/live"), (4_000_000, "results/tiny/ckpt")],
    ids=["at_the_curves", "at_the_checkpoint"],
)
def test_a_full_disk_while_training_is_one_line_and_loses_nothing(faults_project, limit, where):
    """A file-size limit stands in for a full disk. Small, it stops the curves, whose dvclive opens DVC's
    sqlite cache (an sqlite error); larger, the checkpoint of a wider tiny (torch and safetensors raise
    their own errors). Each was a traceback; now one line naming what could not be written, and the
    earlier results intact (but the curves, which a new run starts afresh)."""

    def small_disk():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    edit_params(faults_project, lambda p: p["sizes"]["tiny"].update(n_embd=512, n_head=8))  # ~10 MB to save
    before = snapshot(faults_project)
    p = subprocess.run(
        "ladder train --size tiny",
        shell=True,
        cwd=faults_project,
        env=ENV,
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
    )
    line = last_line(p.stderr)
    assert p.returncode == 1 and line.startswith(f"ladder train: error: {where}: cannot be written"), p.stderr
    assert "is the disk full?" in line
    assert [f for f in changed(before, snapshot(faults_project)) if not f.startswith("results/tiny/live/")] == []
    assert temps(faults_project) == []
