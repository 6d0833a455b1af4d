"""`ladder log`: the experiment log, the small table of what was tried that people otherwise keep by
hand; one row per run, printed and written to results/log.csv and results/log.md.

Runs: each evaluated size in the workspace, each DVC experiment x each size it rebuilt, each scaling
rung and, when asked for, each sweep cell. Sizes and experiments are read by analysis/runs.py, the
reader `ladder summary` uses, from the workspace or from the experiment's revision.

Experiments are listed by `dvc exp show --json`, run as its own process: that JSON is the machine
form of DVC's own table and has kept its nesting (params and metrics by file) through dvc 3.x, where
`dvc.api.exp_show()` flattens columns and renames them when two files share a key (every eval.json
holds `val_loss`), and `Repo.experiments.show()` returns DVC's internal objects. The experiment's
own files are then read through `dvc.api.DVCFileSystem`, the public way to read a revision's DVC
outputs, so every number and param of an experiment's row comes from the files its run wrote.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ladder.analysis import runs
from ladder.pipeline import config, paths
from ladder.pipeline.files import LadderError, atomic, user_target
from ladder.pipeline.progress import log

KINDS = {
    "size": "evaluated size",
    "exp": "DVC experiment",
    "compare": "comparison",
    "rung": "scaling rung",
    "cell": "sweep cell",
}
NAMES = ["run", "kind", "size", "commit"]  # then the params that differ, then:
NUMBERS = [
    "n_params",
    "tokens",
    "flops",
    "train_seconds",
    "val_loss",
    "val_bits_per_byte",
    "predicted_val_loss",
    "predicted_low",
    "predicted_high",
    "prediction_error",
    "beyond_tested",
    "difference",
    "verdict",
]
SHOWN = {
    "n_params": "{:,}",
    "tokens": "{:,}",
    "flops": "{:.3g}",
    "train_seconds": "{:.1f}",
    "val_loss": "{:.4f}",
    "val_bits_per_byte": "{:.4f}",
    "predicted_val_loss": "{:.4f}",
    "predicted_low": "{:.4f}",
    "predicted_high": "{:.4f}",
    "prediction_error": "{:+.2%}",
    "difference": "{:+.2%}",
}
TITLE = "# Experiment log (`ladder log`)"
CHANGES = "changes"  # the params a row's run changed from its commit's, as key=value
# the printed table's columns (log.csv and log.md keep every one), with shorter headings
COMPACT = {
    "run": "run",
    "kind": "kind",
    "size": "size",
    CHANGES: "changes",
    "tokens": "tokens",
    "train_seconds": "train_s",
    "val_loss": "val_loss",
    "predicted_val_loss": "predicted",
    "prediction_error": "error",
    "difference": "difference",
    "verdict": "verdict",
}
EPILOG = """\
reads:
  results/<size>/eval.json, eval_provenance.json   size: each evaluated size in the workspace
  `dvc exp show --json`, then those files as each  exp: each size the experiment rebuilt
    experiment's revision holds them
  results/scaling/rungs/<rung>/train.json   rung (held out of the fit: its prediction, fit.json)
  results/compare/<variant>/compare.json     compare: a row per comparison, at its largest size
  results/sweep/cells/<cell>/train.json                  cell (only with --kinds ...,cell)
writes:
  results/log.csv   every column
  results/log.md    the wide table, as --wide prints it
prints: run, kind, size, changes (the params the run changed, key=value, cut to fit the terminal),
  tokens, train_s, val_loss, predicted, error; --wide prints every column:
columns:
  run, kind, size, commit   commit: the workspace's HEAD (-dirty: uncommitted changes), or the
                            experiment's baseline
  <dotted param names>      each param that differs, in some row, from that commit's params.yaml
  n_params, tokens, flops, train_seconds
  val_loss, val_bits_per_byte          rungs and cells: training's last val loss, no bits per byte
  predicted_val_loss, predicted_low, predicted_high, prediction_error   where eval holds a prediction
  beyond_tested             how far the prediction reached past what the fit's extrapolation test
                            checked (N and D, x the largest rung / x tested), where it did
  difference, verdict       a comparison: variant / baseline - 1 of the predicted val loss at the
                            largest size, and helps, hurts or within noise there (`ladder compare`)
  changes                   the differing params of this row alone, as key=value
Columns empty in every row are left out of the printed table and log.md. Without git or .dvc/
there are no exp rows, and one line on stderr says so."""
PARAMS, BASE = "_params", "_base"  # a row's params as its run recorded them, and the commit they are compared with


def git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def flat(tree: dict, prefix: str = "") -> dict:
    """Dotted names to values; a list (or an empty mapping) is one value, as `dvc exp run -S` sets it."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


@functools.cache
def committed(rev: str | None) -> dict:
    """params.yaml at a commit, flattened; without git, the workspace's."""
    text = git("show", f"{rev}:{paths.PARAMS}") if rev else None
    if text is None and paths.PARAMS.exists():
        text = paths.PARAMS.read_text()
    return flat(config.read_yaml(text) or {}) if text else {}


def beyond_tested(prediction: dict) -> str | None:
    """A prediction's reach past the extrapolation test, in a few characters ("N 63x/2.7x"), or None."""
    if not prediction.get("warnings"):
        return None
    reach, tested = prediction["beyond_rungs"], prediction["tested_to"]
    return ", ".join(f"{k} {reach[k]:g}x/{tested[k]:g}x" for k in ("N", "D") if reach[k] > tested[k] * 1.01) or "epochs"


def evaluated_row(r: dict, run: str, kind: str, commit: str | None, base: str | None) -> dict:
    p = r["provenance"]
    low, high = (p.get("prediction") or {}).get("interval") or (None, None)
    return {
        "run": run,
        "kind": kind,
        "size": r["size"],
        "commit": commit,
        "n_params": r["params"],
        "tokens": r["tokens_trained"],
        "flops": p.get("train_flops"),
        "train_seconds": r["train_seconds"],
        "val_loss": r["val_loss"],
        "val_bits_per_byte": r["val_bits_per_byte"],
        "predicted_val_loss": r.get("predicted_val_loss"),
        "predicted_low": low,
        "predicted_high": high,
        "prediction_error": r.get("prediction_error"),
        "beyond_tested": beyond_tested(p.get("prediction") or {}),
        PARAMS: p.get("params_used") or {},
        BASE: base,
    }


def held_out() -> dict[str, dict]:
    """The fit's predictions for the rungs it was not fitted to (fit.json), by rung."""
    fit = runs.workspace(paths.FIT) or {}
    return {r["rung"]: r for r in fit.get("rungs", []) if r["held_out"]}


def trained_rows(kind: str, folders: list[paths.RunFiles], commit: str | None, base: str | None) -> list[dict]:
    """Rungs and cells have no eval: their val loss is training's last (train.json's final_val_loss); a
    held-out rung shows what the fit predicted for it."""
    rows, predicted = [], held_out() if kind == "rung" else {}
    for t in filter(None, map(runs.trained, folders)):
        p = predicted.get(t["name"], {})
        low, high = p.get("interval") or (None, None)
        rows.append(
            {
                "run": t["name"],
                "kind": kind,
                "size": None,
                "commit": commit,
                "n_params": t["params"],
                "tokens": t["tokens"],
                "flops": t.get("flops"),
                "train_seconds": t["train_seconds"],
                "val_loss": t["final_val_loss"],
                "predicted_val_loss": p.get("fitted"),
                "predicted_low": low,
                "predicted_high": high,
                "prediction_error": p.get("error"),
                PARAMS: t.get("params_used") or {},
                BASE: base,
            }
        )
    return sorted(rows, key=lambda r: (r["n_params"], r["run"]))


def folders(root: Path, place) -> list[paths.RunFiles]:
    return [place(d.name) for d in sorted(root.glob("*")) if d.is_dir()]


def experiments(all_commits: bool) -> list[dict]:
    """Each finished DVC experiment (name, rev, baseline) and the sizes it rebuilt: those whose eval
    outputs differ from its baseline's by hash (eval_provenance.json: DVC lists metrics files apart, with
    no hash; the other sizes are the baseline's results, carried along). Where DVC cannot list them,
    one line says why and there are none."""
    if git("rev-parse", "HEAD") is None:
        log.info("log: no DVC experiments listed: not a git repository with a commit")
        return []
    if not Path(".dvc").is_dir():
        log.info("log: no DVC experiments listed: no .dvc/ here (not a DVC project)")
        return []
    p = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json", *(["-A"] if all_commits else [])],
        capture_output=True,
        text=True,
    )
    if p.returncode:
        why = next((line for line in p.stderr.splitlines() if line.strip()), f"exit {p.returncode}")
        log.info("log: no DVC experiments listed: `dvc exp show` failed: %s", why.strip())
        return []
    try:
        shown = json.loads(p.stdout or "[]")
    except ValueError:
        log.info("log: no DVC experiments listed: `dvc exp show --json` printed no JSON")
        return []
    found = []
    for baseline in shown:
        if baseline.get("rev") == "workspace":
            continue
        base_outs = (baseline.get("data") or {}).get("outs") or {}
        for exp in baseline.get("experiments") or []:
            rev = (exp.get("revs") or [{}])[0]
            data = rev.get("data") or {}
            if (exp.get("executor") or {}).get("state", "success") != "success" or rev.get("error") or not data:
                continue  # queued, running or failed
            outs = data.get("outs") or {}
            sizes = sorted(
                Path(f).parent.name
                for f in data.get("metrics") or {}
                if Path(f) == paths.RunFiles(Path(f).parent.name).eval
            )
            rebuilt = [
                s
                for s in sizes
                if (h := (outs.get(str(paths.RunFiles(s).provenance)) or {}).get("hash")) is None
                or h != (base_outs.get(str(paths.RunFiles(s).provenance)) or {}).get("hash")
            ]
            found.append(
                {
                    "name": exp.get("name") or rev.get("name") or rev["rev"][:7],
                    "rev": rev["rev"],
                    "baseline": baseline["rev"],
                    "sizes": rebuilt,
                }
            )
    return found


def experiment_rows(exp: dict) -> list[dict]:
    """The experiment's sizes, read from its revision's files; left out in one line if they cannot be."""
    from dvc.api import DVCFileSystem
    from dvc.exceptions import DvcException

    def read(path: Path) -> dict | None:
        try:
            return json.loads(fs.read_text(path.as_posix()))
        except FileNotFoundError:
            return None

    fs = DVCFileSystem(".", rev=exp["rev"])  # positional: the argument's name changed within dvc 3.x (url, repo)
    try:
        found = runs.evaluations(exp["sizes"], read, where=f"experiment {exp['name']}: ")
    except (LadderError, DvcException, OSError, ValueError, KeyError) as e:
        log.info("log: experiment %s left out: %s", exp["name"], str(e).splitlines()[0] if str(e) else type(e).__name__)
        return []
    finally:
        fs.close()
    return [evaluated_row(r, exp["name"], "exp", exp["baseline"][:7], exp["baseline"]) for r in found]


def gather(kinds: set[str], all_commits: bool) -> list[dict]:
    head = git("rev-parse", "HEAD")
    commit = head and head[:7] + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    rows = []
    if "size" in kinds:
        rows += [evaluated_row(r, r["size"], "size", commit, head) for r in runs.evaluations(runs.evaluated_sizes())]
    if "exp" in kinds:
        for exp in experiments(all_commits):
            rows += experiment_rows(exp)
    if "compare" in kinds:
        rows += compare_rows(commit, head)
    if "rung" in kinds:
        rows += trained_rows("rung", folders(paths.SCALING_RUNGS, paths.rung), commit, head)
    if "cell" in kinds:
        rows += trained_rows("cell", folders(paths.SWEEP_CELLS, paths.cell), commit, head)
    return rows


def compare_rows(commit: str | None, base: str | None) -> list[dict]:
    """A row per comparison (`ladder compare`): the variant's changes, and at the largest size it predicts
    for, the variant's predicted val loss, the difference from the baseline's and the verdict."""
    rows = []
    for folder in sorted(paths.COMPARE.glob("*")):
        report = runs.workspace(paths.CompareFiles(folder.name).report)
        if not report or not report.get("sizes"):
            continue
        top = max(report["sizes"], key=lambda x: x["N"])
        rows.append(
            {
                "run": report["variant"],
                "kind": "compare",
                "size": top["size"],
                "commit": commit,
                "tokens": top["D"],
                "predicted_val_loss": top["variant"],
                "difference": top["relative"],
                "verdict": top["verdict"],
                PARAMS: report["changes"],
                BASE: base,
            }
        )
    return rows


def table(rows: list[dict]) -> pd.DataFrame:
    """The rows with a column for each param that differs, in any row, from the commit the row's run
    is compared with (the workspace's HEAD, an experiment's baseline); a key that commit's params.yaml
    does not name (a cell's own size entry) is no difference. Values as the runs recorded them."""
    used = [flat(r[PARAMS]) for r in rows]
    differ = sorted(
        {k for r, u in zip(rows, used) for k, v in u.items() if k in (ref := committed(r[BASE])) and ref[k] != v}
    )
    records = [
        {k: v for k, v in r.items() if k not in (PARAMS, BASE)}
        | {k: u.get(k) for k in differ}
        | {CHANGES: " ".join(f"{k}={u[k]}" for k in differ if k in u and committed(r[BASE]).get(k, u[k]) != u[k])}
        for r, u in zip(rows, used)
    ]
    return pd.DataFrame(records, columns=[*NAMES, *differ, *NUMBERS, CHANGES], dtype=object)


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """The wide table, as in log.md and `--wide`: a column per differing param, numbers rounded, and
    columns empty in every row left out (log.csv keeps them all)."""
    out = df.drop(columns=CHANGES).dropna(axis=1, how="all").copy()
    for col in out:
        fmt = SHOWN.get(col, "{}")
        out[col] = out[col].map(lambda v, fmt=fmt: "" if v is None or pd.isna(v) else fmt.format(v))
    return out


def compact(df: pd.DataFrame, width: int) -> str:
    """The printed table within `width` columns: the params a row changes as one column of key=value,
    cut with "…" where the line would be too long, and the headline numbers."""
    view = df[[c for c in COMPACT if c in df]].rename(columns=COMPACT).dropna(axis=1, how="all").copy()
    for col in view:
        fmt = SHOWN.get(next(k for k, v in COMPACT.items() if v == col), "{}")
        view[col] = view[col].map(lambda v, f=fmt: "" if v is None or pd.isna(v) else f.format(v))
    text = view.to_string(index=False)
    over = max(map(len, text.splitlines())) - width
    if over > 0:
        cap = max(8, int(view["changes"].str.len().max()) - over)
        view["changes"] = view["changes"].map(lambda c: c if len(c) <= cap else c[: cap - 1] + "…")
        text = view.to_string(index=False)
    return text


def ours(path: Path) -> bool:
    """An earlier log: by its first line (so a log kept by hand in results/log.md is never replaced)."""
    try:
        first = path.read_text().split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return False
    return first == TITLE or first.startswith(",".join(NAMES))


def kinds(text: str) -> set[str]:
    chosen = set(text.split(","))
    if chosen - set(KINDS):
        raise argparse.ArgumentTypeError(f"{','.join(sorted(chosen - set(KINDS)))}: not one of {', '.join(KINDS)}")
    return chosen


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument(
        "--kinds",
        type=kinds,
        default={"size", "exp", "compare", "rung"},
        metavar="KINDS",
        help=f"comma-separated kinds of run to list, of {','.join(KINDS)} "
        "(default: size,exp,compare,rung; a sweep's cells are many)",
    )
    p.add_argument(
        "--wide", action="store_true", help="print every column (a column per differing param), as log.md holds it"
    )
    p.add_argument(
        "-A",
        "--all-commits",
        action="store_true",
        help="list the experiments of every commit (`dvc exp show -A`), not only HEAD's",
    )


def main(args) -> None:
    rows = gather(args.kinds, args.all_commits)
    if not rows:
        looked = [what for kind, what in KINDS.items() if kind in args.kinds]
        raise LadderError(
            f"{paths.RESULTS}/: nothing to log (no {', '.join(looked[:-1])}{' or ' * (len(looked) > 1)}"
            f"{looked[-1]}; run the pipeline first)"
        )
    df = table(rows)
    view = shown(df)
    csv, md = (user_target(paths.LOG[k], ours, "experiment log") for k in ("csv", "md"))
    with atomic(csv, md) as (tmp_csv, tmp_md):
        df.to_csv(tmp_csv, index=False)
        tmp_md.write_text(
            f"{TITLE}\n\nOne row per run; the columns between commit and n_params are the params that "
            f"differ from each run's commit.\n\n{view.to_markdown(index=False, disable_numparse=True)}\n"
        )
    print(view.to_string(index=False) if args.wide else compact(df, shutil.get_terminal_size((120, 24)).columns))
    log.info("log: wrote %s and %s", csv, md)
