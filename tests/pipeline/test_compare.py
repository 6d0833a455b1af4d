"""`ladder compare`: a variant's rungs beside the baseline's, both sides' replicas for the noise floor, both laws
and a verdict per size; pipeline jobs under Snakemake and DVC alike."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
from conftest import SCALING, SIZES, dvc_changed, dvc_ran, planned, sh, shrunk_rungs


def read(project, rel):
    return json.loads((project / rel).read_text())


def variant_jobs(name: str, project) -> set[str]:
    """DVC's names of a variant's jobs: its arms, its replicas and its ab job."""
    compare = read(project, f"results/compare/{name}/compare.json")["noise"]
    replicas = {
        f"replica@{name}-{side}-{r}-{seed}"
        for side in ("baseline", "variant")
        for r in shrunk_rungs()
        if r.rsplit("-", 1)[0] in compare["shapes"]
        for seed in compare["seeds"][1:]
    }
    return {f"arm@{name}-{r}" for r in shrunk_rungs()} | replicas | {f"ab@{name}"}


def test_a_harmful_change_hurts_and_an_equivalent_spelling_is_within_noise(project):
    params = (project / "params.yaml").read_text()
    dry = sh("ladder compare slow -S lr=0.0001 --dry-run", project).stdout
    runs = len(shrunk_rungs())
    assert f"training runs (8 replica, {runs} arm)" in dry and "TFLOP" in dry
    assert (project / "params.yaml").read_text() == params  # a dry run changes nothing

    out = sh("ladder compare slow -S lr=0.0001 --cores 2", project).stdout
    assert "slow hurts" in out and "figure: results/compare/slow/compare.png" in out
    # compile is off on a CPU either way: the same runs, spelled differently
    sh("ladder compare same -S train.compile=off --cores 2", project)

    slow, same = read(project, "results/compare/slow/compare.json"), read(project, "results/compare/same/compare.json")
    assert [r["run"] for r in slow["rungs"]] == shrunk_rungs()
    assert all(r["relative"] > 0 for r in slow["rungs"])  # 30x too low an lr: worse at every rung
    assert {x["size"] for x in slow["sizes"]} >= set(SIZES)
    assert {x["verdict"] for x in slow["sizes"]} == {"hurts"}
    assert all(x["interval"][0] > 0 for x in slow["sizes"])
    assert all(r["difference"] == 0 for r in same["rungs"])
    assert {x["verdict"] for x in same["sizes"]} == {"within noise"}
    assert {x["trend"] for x in same["sizes"]} == {"holds"}
    # the noise floor: 2 noise shapes x 2 budgets x 2 sides, each at 2 seeds
    assert slow["noise"]["dof"] == 2 * len(SCALING["budgets"]) * 2 and slow["noise"]["sd_log"] > 0
    assert slow["noise"]["seeds"] == [read(project, "results/tiny/train.json")["seed"], 1]
    assert (project / "results/compare/slow/compare.png").stat().st_size > 30_000
    sh("ladder log", project)  # a row per comparison, at its largest size
    log = pd.read_csv(project / "results/log.csv")
    rows = log[log["kind"] == "compare"].set_index("run")
    assert sorted(rows.index) == ["same", "slow"] and rows.loc["slow", "verdict"] == "hurts"
    assert rows.loc["slow", "lr"] == 0.0001 and rows.loc["slow", "difference"] > 0

    # both tools agree it is built; the variants' jobs are in dvc.lock (Snakemake recorded them)
    assert planned(project, "results/compare/slow/compare.json", "results/compare/same/compare.json") == Counter()
    assert dvc_changed(project) == set()
    # a name already taken by other changes is refused, params.yaml as it was
    before = (project / "params.yaml").read_text()
    p = sh("ladder compare slow -S lr=0.5", project, check=False)
    assert p.returncode == 1 and "compare.variants.slow: exists with other changes" in p.stderr.strip().splitlines()[-1]
    assert (project / "params.yaml").read_text() == before
    # changing a variant reruns its own jobs only (its replicas on both sides: one stage, one params list),
    # not the other variant's, not the baseline's rungs
    sh("sed -i 's/lr: 0.0001/lr: 0.0002/' params.yaml", project)
    assert dvc_changed(project) == variant_jobs("slow", project)
    targets = ["results/compare/slow/compare.json", "results/compare/same/compare.json"]
    assert planned(project, *targets) == Counter(arm=runs, replica=8, ab=1)


def test_a_comparison_runs_under_dvc_and_reruns_only_its_own_jobs(project):
    """`dvc exp run -S` adds a variant and builds its ab job: its arms and replicas, never the baseline's rungs."""
    sh("git add -A && git commit -qm 'pipeline built'", project)
    out = sh("dvc exp run -S '+compare.variants.fast.lr=0.01' -n fast ab@fast", project).stdout
    assert dvc_ran(out) == variant_jobs("fast", project)
    report = read(project, "results/compare/fast/compare.json")
    assert report["changes"] == {"lr": 0.01} and len(report["sizes"]) >= len(SIZES)
    assert planned(project, "results/compare/fast/compare.json") == Counter()  # Snakemake agrees it is built
    shown = sh("ladder compare fast", project).stdout  # reports the experiment's result, trains nothing
    assert "fast:" in shown and "noise floor" in shown and "training runs" not in shown
