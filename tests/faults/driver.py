"""Run a table of fault cases in one process, each through `ladder.cli.main` as the command runs.

Usage (in a project): python driver.py CASES.json; writes .faults-results.json. Imports happen
once, which is what makes dozens of cases cheap. Per case: set up its files, write its params to
a file of its own, snapshot, run, snapshot, put every file back. A case is a dict:
  id, argv (the command line after `ladder`), params (dotted key -> value; "<delete>" removes the
  key), params_text (raw params file instead), files (path -> text written first), truncate
  (path -> bytes kept), remove (paths), may_change (outputs a successful run rewrites).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import yaml  # noqa: E402
from faultlib import changed, snapshot, temps  # noqa: E402

from ladder import cli  # noqa: E402

DELETE = "<delete>"
BACKUP = Path(".faults-backup")


class Capture(io.TextIOBase):
    """stderr for the logging handler cli.main sets up once: it writes wherever the case is."""

    buf = io.StringIO()

    def write(self, s):
        return self.buf.write(s)


def edit(raw: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node[part]
    if value == DELETE:
        del node[last]
    else:
        node[last] = value


def save(paths: list[str]) -> list[tuple[str, bool]]:
    """Copy each path aside (file or folder); (path, existed)."""
    saved = []
    for i, rel in enumerate(paths):
        p, keep = Path(rel), BACKUP / str(i)
        if p.is_dir():
            shutil.copytree(p, keep, symlinks=True, copy_function=shutil.copy2)
        elif p.exists():
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, keep)
        saved.append((rel, p.exists()))
    return saved


def restore(saved: list[tuple[str, bool]]) -> None:
    for i, (rel, existed) in enumerate(saved):
        p, keep = Path(rel), BACKUP / str(i)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
        if existed:
            (shutil.copytree if keep.is_dir() else shutil.copy2)(keep, p)
    shutil.rmtree(BACKUP, ignore_errors=True)


def run_case(case: dict) -> dict:
    touched = [*case.get("files", {}), *case.get("truncate", {}), *case.get("remove", []), *case.get("may_change", [])]
    saved = save(touched)
    try:
        for rel, text in case.get("files", {}).items():
            Path(rel).parent.mkdir(parents=True, exist_ok=True)
            Path(rel).write_text(text)
        for rel, keep in case.get("truncate", {}).items():
            with open(rel, "r+b") as f:
                f.truncate(keep)
        for rel in case.get("remove", []):
            p = Path(rel)
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        argv = list(case["argv"])
        if "params" in case or "params_text" in case:
            pfile = Path(".faults") / f"{case['id']}.yaml"
            pfile.parent.mkdir(exist_ok=True)
            if "params_text" in case:
                pfile.write_text(case["params_text"])
            else:
                raw = yaml.safe_load(Path("params.yaml").read_text())
                for k, v in case["params"].items():
                    edit(raw, k, v)
                pfile.write_text(yaml.safe_dump(raw, sort_keys=False))
            argv += ["--params", str(pfile)]
        before = snapshot(Path("."))
        Capture.buf = io.StringIO()
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
        except BaseException:  # noqa: BLE001 - a traceback is a failure the test shows
            Capture.buf.write(traceback.format_exc())
            rc = "traceback"
        after = snapshot(Path("."))
        lost = [f for f in changed(before, after) if not f.startswith(tuple(case.get("may_change", [])))]
        return {"rc": rc, "stderr": Capture.buf.getvalue(), "changed": lost, "temps": temps(Path("."))}
    finally:
        restore(saved)


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    sys.stderr = Capture()
    results = {c["id"]: run_case(c) for c in cases}
    Path(".faults-results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
