"""The fault suite's checks: nothing lost, ever.

Its projects are tests/conftest.py's `faults_base` (built once per session by the `ladder`
commands themselves) and `faults_project` (a copy of it per test). Every case
checks the same things: the exit code, that the error's one line names the key or file, that every
file which existed before is byte-identical after (a sha256 snapshot), and that no temporary
sibling (`.NAME.tmp-PID`, `.NAME.old-PID`) is left.

Many cases fail before any work starts, so they are batched: `driver.py` runs a table of them in
one process through `ladder.cli.main`, each with its own params file, setup, snapshot and result.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ENV

HERE = Path(__file__).resolve().parent
# A stand-in that holds a lock while the test runs something else: a stage job's, a Snakemake run's
# hold on the project, or DVC's repo lock, each taken by the code that takes it for real.
HOLD = """import sys, time
from ladder.pipeline import lock
kind, *args = sys.argv[1:]
if kind == "job":
    held = lock.held(*args)
    held.__enter__()
elif kind == "run":
    assert lock.hold_run(*args) is None
else:
    from dvc.lock import make_lock
    held = make_lock(".dvc/tmp/lock")  # kept: the lock goes with the object
    held.lock()
print("held", flush=True)
time.sleep(120)
"""
# Not outputs: the tools' own bookkeeping, rewritten by every run.
SKIP = (".git", ".ladder", ".snakemake", ".dvc", "dvc.lock")


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under root except the tools' bookkeeping."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(SKIP):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def changed(before: dict, after: dict) -> list[str]:
    """Files that existed before and are gone or different after."""
    return sorted(f for f, h in before.items() if after.get(f) != h)


def temps(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if ".tmp-" in p.name or ".old-" in p.name)


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def batch(project: Path, cases: list[dict]) -> dict[str, dict]:
    """Run a table of cases in one process (driver.py); {case id: {rc, stderr, changed, temps}}."""
    spec = project / ".faults-cases.json"
    spec.write_text(json.dumps(cases))
    p = subprocess.run(
        [sys.executable, str(HERE / "driver.py"), spec.name], cwd=project, env=ENV, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads((project / ".faults-results.json").read_text())


def copy(base: Path, tmp_path_factory, name: str) -> Path:
    """A copy of the suite's project for one module's batch."""
    dst = tmp_path_factory.mktemp(name) / "project"
    shutil.copytree(base, dst, symlinks=True, copy_function=shutil.copy2)
    return dst


def check(result: dict, rc, names: str) -> None:
    """The case's exit code; its last line names `names`; nothing that existed changed; no temp left."""
    line = last_line(result["stderr"])
    assert result["rc"] == rc, result["stderr"][-3000:]
    assert names in line, line
    if rc:
        assert line.startswith("ladder ") and ": error: " in line, line
    assert result["changed"] == [], result["changed"]
    assert result["temps"] == [], result["temps"]


def _hold(project: Path, *args: str) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, *args], cwd=project, env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def hold(project: Path, job: str, command: str) -> subprocess.Popen:
    """A process holding `job`'s lock, as a stage running `command` would."""
    return _hold(project, "job", job, command)


def hold_run(project: Path, command: str) -> subprocess.Popen:
    """A process holding the project, as the Snakemake run `command` does from its start to its end."""
    return _hold(project, "run", command)


def hold_dvc(project: Path) -> subprocess.Popen:
    """A process holding DVC's repo lock, as a DVC command does while it plans, hashes or commits."""
    return _hold(project, "dvc")
