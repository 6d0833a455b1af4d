"""What a stage's outputs were built from, so that Snakemake and DVC judge them alike.

A stage's result depends on its inputs, its params slice and its code. The code is every module
the stage runs: `code_files(stage)` follows the imports inside src/ladder from the stage's module
(the Snakemake rules take exactly these files as inputs, and dvc.yaml is generated with them). The
inputs are stood for by the upstream manifests (`dag.inputs`), which hold the sha256 of the large
files. Each stage records `stamp()` — the sha256 of its params slice, of its code
files and of its input manifests — in its manifest, whichever tool runs it.

DVC compares params and files with dvc.lock, which records DVC's own runs and Snakemake's (the
Snakefile's `onsuccess` runs `dvc commit`). Snakemake remembers only the jobs it ran itself, and
an input whose timestamp moved but whose content matches that memory counts as unchanged; after
DVC rebuilt an output in between, that memory is stale. So on every invocation the Snakefile
writes one snapshot per stage (`.ladder/params/<stage>.json`, the params slice) and lets its
timestamp carry the verdict read off the output's manifest (`write_snapshots`). Code files are
ancient() inputs (the stamp judges them); the manifests stay plain inputs, so that a job Snakemake
reruns reruns what depends on it, and `align_dates` keeps their dates from rerunning anything the
stamps call current (after a `dvc pull`, say, which writes files in no particular order).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from functools import cache
from pathlib import Path

from ladder.pipeline import dag, intact, paths
from ladder.pipeline.config import Params
from ladder.pipeline.dag import job_name, jobs, params_of
from ladder.pipeline.files import atomic_write_text, read_json

PACKAGE = Path(__file__).resolve().parents[1]  # src/ladder
PACKAGES = ("pipeline", "data", "nn", "analysis", "stages", "tools")
# Modules a stage imports that cannot change its result, left out of its code dependencies: progress bars
# and log lines; the stage records, whose parts that shape a result (params keys, inputs) are stamped as
# such, so that adding a stage reruns nothing else; and the package markers, which hold docstrings only.
NOT_CODE = {"pipeline/progress.py", "pipeline/dag.py", "__init__.py", *(f"{pkg}/__init__.py" for pkg in PACKAGES)}
EPOCH = 0  # a snapshot dated here is older than every output


def _module_file(name: str) -> Path | None:
    """src/ladder/... file of a dotted `ladder.x.y` module name (a package's __init__.py), else None."""
    if name != "ladder" and not name.startswith("ladder."):
        return None
    base = PACKAGE.joinpath(*name.split(".")[1:])
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _imports(file: Path) -> set[Path]:
    """ladder modules `file` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]  # `from ladder.pipeline import x`
        else:
            continue
        found |= {f for f in map(_module_file, names) if f is not None}
    return found


@cache
def code_files(stage: str) -> tuple[str, ...]:
    """The stage's module and every ladder module it imports, transitively, as src/ladder/... paths
    (the form the workflow files use)."""
    todo, seen = [PACKAGE / "stages" / f"{dag.STAGES[stage].module}.py"], set()
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(_imports(f))
    rel = {f.relative_to(PACKAGE).as_posix() for f in seen}
    return tuple(sorted(f"src/ladder/{r}" for r in rel - NOT_CODE))


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _file_sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def stamp(params: Params, stage: str, size: str | None = None) -> dict[str, str]:
    """sha256 of the stage's params slice, of its code files and of its input manifests."""
    # the files the workflow declares (the project's src/), else the installed package's
    code = {
        f: _file_sha(Path(f) if Path(f).is_file() else PACKAGE / f.removeprefix("src/ladder/"))
        for f in code_files(stage)
    }
    return {
        "params": _sha(params_of(params, stage, size)),
        "code": _sha(code),
        "inputs": _sha({str(f): _file_sha(f) for f in dag.inputs(params, stage, size)}),
    }


def built_from(stage: str, size: str | None = None) -> dict | None:
    """The stamp recorded in the stage's manifest; {} when the manifest exists but says nothing
    readable (so every part counts as stale), None when there is no manifest."""
    manifest = dag.manifest(stage, size)
    if not manifest.exists():
        return None
    try:
        return read_json(manifest).get("built_from") or {}
    except (OSError, ValueError, AttributeError):
        return {}


def write_snapshots(params: Params) -> None:
    """One snapshot per stage, dated by the verdict on its outputs:

    - built from the current params, code and inputs (the manifest's stamp matches): dated at the epoch,
      never newer than an output, so it reruns nothing, whichever tool built the output;
    - built from others: dated now, with the stale parts named in the content, so it is newer than
      every output and differs from anything Snakemake recorded: the job reruns;
    - no manifest yet: the job runs anyway, for its missing outputs.
    An unreadable manifest, or one from before stamps existed, counts as built from others; large
    outputs that are not the files the manifest recorded (a truncated model, a lost shard: see
    pipeline/intact.py) make the job stale too.
    """
    paths.SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    built = {job: built_from(*job) for job in jobs(params)}
    broken = intact.damaged([job for job, was in built.items() if was is not None])
    for (stage, size), was in built.items():
        now = stamp(params, stage, size)
        stale = sorted(k for k in now if was is not None and was.get(k) != now[k])
        stale += ["outputs"] if (stage, size) in broken else []
        text = (
            json.dumps(
                {"params": params_of(params, stage, size)} | ({"stale": stale} if stale else {}),
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
        f = paths.SNAPSHOTS / f"{job_name(stage, size)}.json"
        if not f.exists() or f.read_text() != text:
            atomic_write_text(f, text)
        if was is not None and not stale:
            os.utime(f, (EPOCH, EPOCH))


def _mtime(path: Path) -> float:
    """A file's date; a folder's as Snakemake reads it, off the .snakemake_timestamp in it when there is
    one. A stage run by DVC or by hand rewrites a persistent folder (live/) in place, under the
    timestamp an earlier Snakemake run left there."""
    marker = path / ".snakemake_timestamp"
    return (marker if path.is_dir() and marker.exists() else path).stat().st_mtime


def align_dates(params: Params) -> None:
    """Date the outputs of every stage built from what is there now no earlier than its input
    manifests, so that Snakemake's timestamps agree with the stamps. Dates only: no content is
    touched, and a stage that is stale, or misses an output, is left for Snakemake to rerun."""
    current = [
        (stage, size)
        for stage, size in jobs(params)
        if built_from(stage, size) == stamp(params, stage, size) and all(o.exists() for o in dag.outputs(stage, size))
    ]
    for _ in range(3):  # score sits between trains: a few passes reach a fixed point
        moved = False
        for stage, size in current:
            outs = dag.outputs(stage, size)
            ins = [f for f in dag.inputs(params, stage, size) if f.exists()]
            if not ins:
                continue
            newest = max(map(_mtime, ins))
            if min(map(_mtime, outs)) >= newest:
                continue
            for o in outs:
                for f in [o, *([o / ".snakemake_timestamp"] if o.is_dir() else [])]:
                    if f.exists():
                        os.utime(f, (f.stat().st_atime, newest + 1))
            moved = True
        if not moved:
            return
