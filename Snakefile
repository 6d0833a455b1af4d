"""The ladder pipeline for Snakemake: `snakemake --cores 1 results/small/eval.json` builds that chain.

dvc.yaml, generated from the stage records (src/ladder/pipeline/dag.py), describes the same stages
(tests/pipeline/test_graph.py keeps them equal); docs/architecture.md
explains the rerun rules. Params reach Snakemake as the snapshot files
.ladder/params/<stage>.json, refreshed below on every invocation and dated by whether each stage's
outputs were built from the current params and code (src/ladder/pipeline/stamps.py).
"""

import re
import shlex
import sys
from pathlib import Path

from ladder.pipeline import config as ladder_config, dag as ladder_dag, lock, stamps

if config:  # `snakemake --config key=value` would be silently ignored: every value lives in params.yaml
    raise WorkflowError(f"--config {' '.join(config)}: not read here; set it in params.yaml "
                        "or run `dvc exp run -S key=value`")

# this run holds the project till it ends, or another run (DVC's, a stage by hand) holds it: pipeline/lock.py
if workflow.is_main_process and (held := lock.hold_run(shlex.join(["snakemake", *sys.argv[1:]]))):
    raise WorkflowError(f"{held}; another run is building this project: wait for it (or stop it)")

PARAMS = ladder_config.load("params.yaml")
stamps.write_snapshots(PARAMS)
stamps.align_dates(PARAMS)

# `snakemake --report report.html`: the workflow, each job's runtime, the eval metrics and samples.
report: "workflow/report/workflow.rst"

# Every job's stderr (log lines, and progress one line per update) is also kept in its log: file,
# .ladder/logs/<stage>.log with the stage named as DVC names it: `ladder eval --size tiny` -> eval@tiny.
# A link at the log's path is removed first, so tee never writes through it.
# (Snakemake formats the prefix once: {{ }} are bash's braces.)
shell.prefix('set -euo pipefail; '
             'ladder() {{ local log=".ladder/logs/$1${{3:+@$3}}.log"; rm -f "$log"; '
             '{{ command ladder "$@" 2>&1 >&3 | tee "$log" >&2; }} 3>&1; }}; ')


wildcard_constraints:
    size="|".join(PARAMS.sizes),
    cell="|".join(map(re.escape, PARAMS.sweep.cells())),
    rung="|".join(PARAMS.scaling.rungs()),
    replica="|".join(
        f"{side}-{rung}-{seed}" for side in ladder_config.SIDES for rung in PARAMS.scaling.rungs() for seed in PARAMS.compare.seeds
    ),
    variant="|".join(map(re.escape, PARAMS.compare.variants)),


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/scaling.smk"
include: "workflow/rules/compare.smk"


rule all:
    input:
        expand("results/{size}/eval.json", size=PARAMS.pipeline.sizes),
        "data/curriculum/scored/plan.json",  # DVC always builds it too: dvc.yaml's score stage
        "results/sweep/optima.json",
    default_target: True


onsuccess:
    # Record what Snakemake built in dvc.lock, so `dvc status` agrees that it is up to date.
    stages = dvc_stages(workflow.dag.jobs)
    if Path(".dvc").is_dir() and stages:
        shell("dvc commit --force --quiet " + " ".join(stages))
