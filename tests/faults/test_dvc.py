"""Faults under DVC. `dvc repro` and `dvc exp run` delete no output before a stage's command runs
(every output in dvc.yaml is persistent; each stage replaces its outputs atomically), so a bad param
that only the command detects, a killed stage, or a lock held by another run loses nothing, and the
stage stays changed for the next `dvc repro`. Snakemake and DVC refuse each other in one line naming
the holder (pipeline/lock.py). The project: the suite's, built by `ladder`, its train@tiny chain recorded
in dvc.lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import ENV, clone, edit_params, sh
from faultlib import changed, copy, hold, hold_dvc, hold_run, snapshot, temps
from killer import fingerprint

CHAIN = ["download", "subset", "tokenizer", "shard", "curriculum", "train@tiny"]  # what every case reruns from
TINY = "results/tiny"
TINY_OUTS = [f"{TINY}/{f}" for f in ("model.safetensors", "config.json", "train.json", "loss.tsv", "val_loss.tsv")]
SNAKEMAKE = ["snakemake", "--cores", "1", f"{TINY}/train.json"]

# id, how (repro: params.yaml edited, then `dvc repro`; exp: `dvc exp run -S`), the edits, the stage DVC
# runs first (the one whose outputs DVC used to delete), what the line must name
CASES = [
    ("repro_micro_batch_not_dividing", "repro", {"train.micro_batch": 3}, "train@tiny", "batch_tokens"),
    # the stage DVC runs first (subset) reads nothing wrong: its config.load refuses the eval key
    ("repro_bad_key_of_a_later_stage", "repro", {"subset.min_chars": 100, "eval.top_p": 2}, "subset", "eval.top_p"),
    ("exp_micro_batch_not_dividing", "exp", {"train.micro_batch": 3}, "train@tiny", "batch_tokens"),
    ("exp_unknown_key", "exp", {"train.learning_rate": 0.1}, "train@tiny", "train.learning_rate"),
]


def dvc(project: Path, args: str) -> subprocess.CompletedProcess:
    return sh(f"dvc {args}", project, check=False)


def stale(project: Path, *stages: str) -> set[str]:
    """Those of `stages` that `dvc status` says must run again."""
    return set(json.loads(sh(f"dvc status --json {' '.join(stages)}", project).stdout or "{}"))


def ladder_line(output: str) -> str:
    """The stage's own error line in DVC's output (DVC's "failed to reproduce" line follows it)."""
    return next((line for line in reversed(output.splitlines()) if line.startswith("ladder ")), "")


def set_param(raw: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        raw = raw[part]
    raw[last] = value


def has(raw: dict, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(raw, dict) or part not in raw:
            return False
        raw = raw[part]
    return True


def holder(lock: Path) -> str | None:
    """The PID a lock file names, if that process is alive. The file is read, not probed with flock:
    a probe could make the stage's own attempt at the lock fail."""
    pid = (lock.read_text().split() or [None])[0] if lock.exists() else None
    return pid if pid and Path(f"/proc/{pid}").exists() else None


def start_job(project: Path, job: str, command: list[str]) -> tuple[subprocess.Popen, int]:
    """Run `command` (a Snakemake or DVC run) until `job`'s stage has taken its lock, then stop that
    stage (SIGSTOP: it keeps its locks, and its outputs stay as they are) while the test does its part.
    Returns the run and the stage's PID."""
    lock = project / ".ladder/locks" / job
    before = lock.read_text() if lock.exists() else None  # a dead stage's, from the build
    run = subprocess.Popen(command, cwd=project, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not (lock.exists() and lock.read_text() != before and (pid := holder(lock))):
        assert run.poll() is None, f"{job} never started: {run.stderr.read()[-3000:]}"
        time.sleep(0.005)
    os.kill(int(pid), signal.SIGSTOP)
    return run, int(pid)


@pytest.fixture(scope="module")
def dvc_base(faults_base, tmp_path_factory) -> Path:
    project = copy(faults_base, tmp_path_factory, "dvc")
    # dvc.lock records train@tiny's chain as `ladder` built it (dvc.lock is each checkout's own)
    sh(f"dvc commit --force --quiet {' '.join(CHAIN)} && git add -A && git commit -qm 'built by ladder'", project)
    return project


@pytest.fixture
def dvc_project(dvc_base, tmp_path) -> Path:
    return clone(dvc_base, tmp_path / "project")


@pytest.fixture(scope="module")
def results(dvc_base, tmp_path_factory) -> dict[str, dict]:
    """Every case in one copy of the project, one after another; what a case lost is put back after it."""
    project = copy(dvc_base, tmp_path_factory, "dvc-params")
    params = yaml.safe_load((project / "params.yaml").read_text())
    out = {}
    for case_id, how, edits, first, _ in CASES:
        if how == "repro":

            def edit(raw, edits=edits):
                for k, v in edits.items():
                    set_param(raw, k, v)

            edit_params(project, edit)
            command = "repro train@tiny"
        else:  # DVC's -S edits only keys that exist, unless told to add one (+)
            command = " ".join(
                ["exp run", *(f"-S {'' if has(params, k) else '+'}{k}={v}" for k, v in edits.items()), "train@tiny"]
            )
        before = snapshot(project)
        p = dvc(project, command)
        after = snapshot(project)
        out[case_id] = {
            "rc": p.returncode,
            "output": p.stdout + p.stderr,
            "temps": temps(project),
            "changed": [f for f in changed(before, after) if f != "params.yaml"],  # what -S edits
            "stale": sorted(stale(project, first)),
        }
        sh("git checkout -q params.yaml", project)
        if out[case_id]["changed"]:  # so that the next case starts from the built project
            sh("dvc checkout --force --quiet " + " ".join(CHAIN), project)
    return out


@pytest.mark.parametrize("case_id, how, edits, first, names", CASES, ids=[c[0] for c in CASES])
def test_a_bad_param_under_dvc_loses_nothing(results, case_id, how, edits, first, names):
    result = results[case_id]
    assert result["rc"] != 0, result["output"][-3000:]
    line = ladder_line(result["output"])
    assert ": error: params.yaml: " in line and names in line, result["output"][-3000:]
    assert f"failed to reproduce '{first}'" in result["output"], result["output"][-3000:]
    assert result["changed"] == [], result["changed"]  # DVC deleted none of the first stage's outputs
    assert result["temps"] == [], result["temps"]
    assert result["stale"] == [first]  # the next `dvc repro` runs it again


def test_a_stage_killed_under_dvc_is_rerun_to_the_uninterrupted_result(dvc_project):
    """...and while it ran, Snakemake was refused in one line naming it, and deleted nothing."""
    # 24 steps, a checkpoint every 3: killed after its first checkpoint, the rerun resumes from it
    edit_params(
        dvc_project,
        lambda p: p["sizes"]["tiny"].update(
            train={"tokens": 24576, "checkpoint_every": 3, "log_every": 4, "eval_every": 4}
        ),
    )
    state, job = dvc_project / TINY / "ckpt/state.json", dvc_project / ".ladder/locks/train@tiny"
    old = state.read_text()
    before = snapshot(dvc_project)
    run = subprocess.Popen(
        ["dvc", "repro", "train@tiny"],
        cwd=dvc_project,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while run.poll() is None and (state.read_text() if state.exists() else old) == old:
        time.sleep(0.005)
    assert run.poll() is None, "training ended before its first checkpoint was seen"
    pid = int(job.read_text().split()[0])  # the stage's own process: its lock names it
    os.kill(pid, signal.SIGSTOP)  # it keeps its locks, and its files stay as they are
    during = snapshot(dvc_project)
    p = sh(" ".join(SNAKEMAKE), dvc_project, check=False)
    assert p.returncode != 0 and f"locked by PID {pid} running `ladder train --size tiny`" in p.stderr, p.stderr
    assert changed(during, snapshot(dvc_project)) == []  # Snakemake deleted none of the job's outputs
    os.kill(pid, signal.SIGKILL)
    output = run.communicate()[0]
    assert run.returncode != 0, output
    volatile = (f"{TINY}/ckpt/", f"{TINY}/live/")  # written as training goes, by design
    assert [f for f in changed(before, snapshot(dvc_project)) if not f.startswith(volatile)] == []
    assert stale(dvc_project, "train@tiny") == {"train@tiny"}

    p = dvc(dvc_project, "repro train@tiny")
    assert p.returncode == 0 and "resuming from step" in p.stdout + p.stderr, p.stdout + p.stderr
    assert temps(dvc_project) == [] and stale(dvc_project, "train@tiny") == set()
    resumed = fingerprint([str(dvc_project / f) for f in TINY_OUTS])
    sh(f"rm -r {TINY}/ckpt && ladder train --size tiny", dvc_project)  # the same stage, uninterrupted
    assert fingerprint([str(dvc_project / f) for f in TINY_OUTS]) == resumed


LONGER = {"tokens": 32768}  # 32 steps: time enough to stop the stage once it has started


# who holds what while `dvc repro train@tiny` runs; what DVC's stage must say
HOLDERS = {
    "job": (
        lambda project: hold(project, "train@tiny", "ladder train --size tiny"),
        "running `ladder train --size tiny`",
    ),
    "snakemake": (lambda project: hold_run(project, " ".join(SNAKEMAKE)), f"running `{' '.join(SNAKEMAKE)}`"),
}


@pytest.mark.parametrize("holder", HOLDERS)
def test_dvc_repro_while_another_run_holds_the_stage_is_refused_and_deletes_nothing(dvc_project, holder):
    take, names = HOLDERS[holder]
    edit_params(dvc_project, lambda p: p.update(lr=0.002))  # every train stage must run again
    process = take(dvc_project)
    try:
        before = snapshot(dvc_project)
        p = dvc(dvc_project, "repro train@tiny")
        assert p.returncode != 0
        line = ladder_line(p.stdout + p.stderr)
        assert f"locked by PID {process.pid} {names}" in line, p.stdout + p.stderr
        assert changed(before, snapshot(dvc_project)) == [] and temps(dvc_project) == []
        assert stale(dvc_project, "train@tiny") == {"train@tiny"}
    finally:
        process.kill()
        process.wait()


def test_snakemake_while_dvc_holds_its_repo_lock_is_refused_naming_it(dvc_project):
    """Between stages DVC holds .dvc/tmp/lock (while a stage's command runs, that command holds the project)."""
    holder = hold_dvc(dvc_project)
    try:
        edit_params(dvc_project, lambda p: p.update(lr=0.002))
        before = snapshot(dvc_project)
        p = sh(" ".join(SNAKEMAKE), dvc_project, check=False)
        assert p.returncode != 0 and f".dvc/tmp/lock: locked by PID {holder.pid} running `dvc" in p.stderr, p.stderr
        assert changed(before, snapshot(dvc_project)) == [] and temps(dvc_project) == []
    finally:
        holder.kill()
        holder.wait()


def test_dvc_repro_while_snakemake_trains_is_refused_and_snakemake_finishes(dvc_project):
    edit_params(dvc_project, lambda p: p["sizes"]["tiny"].update(train=LONGER))
    run, job = start_job(dvc_project, "train@tiny", SNAKEMAKE)
    try:
        p = dvc(dvc_project, "repro train@tiny")
    finally:
        os.kill(job, signal.SIGCONT)
    err = run.communicate()[1]
    assert run.returncode == 0, err[-3000:]  # its own jobs ran under the project it holds
    assert p.returncode != 0 and f"locked by PID {run.pid} running `{' '.join(SNAKEMAKE)}`" in ladder_line(
        p.stdout + p.stderr
    ), p.stdout + p.stderr
    assert stale(dvc_project, "train@tiny") == set()  # and its `dvc commit` recorded what it built
