"""Shared fixtures: real projects in temporary folders, driven by the real `snakemake`, `dvc` and `ladder`.

Three tiers. tests/unit/ (`make test-quick`) runs no pipeline: code on its own, and single `ladder`
commands on a `fresh` copy of the repository. tests/pipeline/ runs Snakemake and DVC for real:
`built` is one copy of the repository with params shrunk to seconds per stage, through which
Snakemake has run the whole pipeline once per session, for all workers; `project` hands each test
its own copy of it (cp -a keeps timestamps, .snakemake metadata and the DVC cache), so tests can
rerun, edit and break things independently. A unit test that asks for `built` or `project` is refused.

tests/faults/ is the fault suite (tests/faults/faultlib.py): bad params, bad and corrupt files,
kills at random points, locks. It keeps to a budget of its own, so it builds only what it needs,
once (`faults_base`: the stages run by `ladder` itself, tiny trained), and may not use `built`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    "LADDER_PROGRESS": "0",
    "LADDER_THREADS": "1",  # the test models are tiny: one thread beats two fighting over a small CPU
    "GIT_AUTHOR_NAME": "ladder tests",
    "GIT_AUTHOR_EMAIL": "tests@ladder.invalid",
    "GIT_COMMITTER_NAME": "ladder tests",
    "GIT_COMMITTER_EMAIL": "tests@ladder.invalid",
    "DVC_NO_ANALYTICS": "1",
}
SIZES = ["tiny", "mini", "medium"]
SWEEP = dict(
    shapes=["w32-d1", "w64-d1"],
    head_dim=16,
    parametrizations=["sp", "mup"],
    lrs=[0.003, 0.006],
    seeds=[1],
    train={"tokens": 2048},
)  # 8 cells of 2 steps; base shape w32-d1
PLANS = {"tiny": "base", "mini": "base", "medium": "scored"}  # medium trains on the order tiny's model scores
SCALING = dict(
    shapes=["w16-d1", "w32-d1", "w48-d1", "w64-d1", "w64-d2"],
    head_dim=16,
    budgets=[2048, 4096],
    holdout=["w48-d1-2048"],
    bootstrap=20,
    train={"eval_every": 1000, "checkpoint_every": 1000, "eval_tokens": 8192},
)  # 10 rungs in the sizes' regime (4 steps)


def sh(cmd: str, cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, shell=True, cwd=cwd, env=env or ENV, capture_output=True, text=True)
    if check and p.returncode:
        raise AssertionError(
            f"`{cmd}` exited {p.returncode}\n--- stdout\n{p.stdout[-4000:]}\n--- stderr\n{p.stderr[-4000:]}"
        )
    return p


def shrink(params: dict) -> dict:
    """The real params.yaml, scaled down so every stage takes seconds on a CPU."""
    params["pipeline"]["sizes"] = dict(PLANS)
    params["data"]["max_bytes"] = 300_000
    params["subset"]["val_fraction"] = 0.2
    params["tokenizer"]["vocab_size"] = 512
    params["train"].update(
        seq_len=64, batch_tokens=1024, micro_batch=8, log_every=1, eval_every=2, eval_tokens=1024, checkpoint_every=2
    )
    for size in params["sizes"].values():
        size.update(n_layer=1, n_head=2, n_embd=32, train={"tokens": 4096})
    params["eval"].update(max_tokens=2048, max_new_tokens=8, prompts=["The history of"], cloze_items=20)
    params["train"].update(mup_base_width=32, mup_base_depth=1)
    params["sweep"].update(SWEEP)
    params["scaling"].update(SCALING)
    params["compare"]["noise_shapes"] = SCALING["shapes"][:2]
    return params


def edit_params(project: Path, change) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    change(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def docs(project):
    return [json.loads(line)["text"] for line in (project / "data/raw/docs.jsonl").read_text().splitlines()]


def use_source(project, source, **data):
    edit_params(project, lambda p: p["data"].update(source=str(source), **data))


def copy_repo(dst: Path) -> Path:
    """The repository's files (as git sees them: tracked and untracked-not-ignored) in a new git repo."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    edit_params(dst, shrink)
    sh("git init -q && git add -A && git commit -qm 'project under test'", dst)
    return dst


def planned(project: Path, *targets: str) -> Counter:
    """Jobs a Snakemake dry run plans, counted by rule."""
    out = sh(f"snakemake {' '.join(targets)} --dry-run --quiet rules", project).stdout
    jobs: Counter = Counter()
    for line in out.split("Job stats:")[1].splitlines() if "Job stats:" in out else []:
        parts = line.split()
        if parts and parts[0] == "total":
            break
        if len(parts) == 2 and parts[1].isdigit():
            jobs[parts[0]] += int(parts[1])
    return jobs


def dvc_changed(project: Path) -> set[str]:
    out = sh("dvc status --json", project).stdout
    return set(json.loads(out or "{}"))


def dvc_ran(output: str) -> set[str]:
    """Stages a `dvc repro` / `dvc exp run` log says it ran."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def per_size(stage: str, sizes=SIZES) -> set[str]:
    """DVC's names of one stage's jobs, a job per size."""
    return {f"{stage}@{s}" for s in sizes}


def cells() -> set[str]:
    """DVC's names of the sweep's cell stages under the shrunk params."""
    from ladder.pipeline.config import Sweep

    return {f"cell@{c}" for c in Sweep(**SWEEP).cells()}


def shrunk_rungs() -> list[str]:
    from ladder.pipeline.config import Scaling

    return Scaling(**(yaml.safe_load((ROOT / "params.yaml").read_text())["scaling"] | SCALING)).rungs()


def rungs() -> set[str]:
    """DVC's names of the scaling rung stages under the shrunk params."""
    return {f"rung@{r}" for r in shrunk_rungs()}


def all_targets() -> list[str]:
    return [f"results/{s}/eval.json" for s in SIZES] + ["results/sweep/optima.json"]


@pytest.fixture(scope="session")
def built(tmp_path_factory, worker_id) -> Path:
    """Built once a session: the first worker here runs Snakemake, two one-thread jobs at a time, while
    the others wait; each worker then reads its own copy (Snakemake and DVC lock a project they run in)."""
    shared = tmp_path_factory.getbasetemp()
    shared = shared if worker_id == "master" else shared.parent  # xdist: the workers' common folder
    once = shared / "built-once"
    with FileLock(str(shared / "built-once.lock")):
        if not (shared / "built-once.done").exists():
            shutil.rmtree(once, ignore_errors=True)  # a worker that died mid-build
            once.mkdir()
            sh(f"snakemake --cores 2 --max-threads 1 {' '.join(all_targets())}", copy_repo(once))
            (shared / "built-once.done").touch()
    return clone(once, tmp_path_factory.mktemp("built") / "project")


def clone(src: Path, dst: Path) -> Path:
    """A test's own copy of a project (cp -a: timestamps, .snakemake metadata and the DVC cache kept)."""
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)
    return dst


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    return clone(built, tmp_path / "project")


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def fresh(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the repository with shrunk params and nothing built (a git repo of its own)."""
    return clone(pristine, tmp_path / "fresh")


def faults_build() -> list[str]:
    return [
        "download",
        "subset",
        "tokenizer",
        "shard",
        "curriculum",
        *(f"train --rung {r}" for r in shrunk_rungs()),
        "fit",
        "predict --size tiny",
        "train --size tiny",
        "eval --size tiny",
        "score",
    ]


@pytest.fixture(scope="session")
def faults_base(tmp_path_factory) -> Path:
    """The fault suite's project: every stage run once by `ladder` (tiny trained, the scored plan made)."""
    project = copy_repo(tmp_path_factory.mktemp("faults"))
    # the commands in one process: what `ladder <stage>` runs, without an interpreter start each
    script = f"import sys\nfrom ladder import cli\nsys.exit(any(cli.main(c.split()) for c in {faults_build()!r}))"
    p = subprocess.run([sys.executable, "-c", script], cwd=project, env=ENV, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-4000:]
    return project


@pytest.fixture
def faults_project(faults_base: Path, tmp_path: Path) -> Path:
    return clone(faults_base, tmp_path / "project")


PIPELINE_FIXTURES = {"built", "project"}
NO_PIPELINE = {"unit": "move it to tests/pipeline/", "faults": "the fault suite builds its own (faults_base)"}


# Files run in this order of tiers, the whole pipelines first: two workers (`make test` hands each a
# file at a time, in this order) then end on short files together instead of one on a long one.
TIERS = ["pipeline", "faults", "unit"]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(TIERS)}
    items.sort(key=lambda item: rank.get(Path(item.fspath).parent.name, len(TIERS)))  # stable: in-file order kept
    for item in items:
        tier = Path(item.fspath).parent.name
        if tier in NO_PIPELINE and PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid}: a {tier} test may not use the built pipeline; {NO_PIPELINE[tier]}")
