"""The ladder pipeline for Snakemake: `snakemake --cores 1 results/small/eval.json` builds that chain.

dvc.yaml describes the same stages (tests/pipeline/test_graph.py keeps them equal); README.md's
"Architecture" section explains the rerun rules. Params reach Snakemake as the snapshot files
.ladder/params/<stage>.json, refreshed below on every invocation and dated by whether each stage's
outputs were built from the current params and code (src/ladder/core/stamps.py).
"""

import re
from pathlib import Path

from ladder.core import config as ladder_config, stamps

if config:  # `snakemake --config key=value` would be silently ignored: every value lives in params.yaml
    raise WorkflowError(f"--config {' '.join(config)}: not read here; set it in params.yaml "
                        "or run `dvc exp run -S key=value`")

PARAMS = ladder_config.load("params.yaml")
stamps.write_snapshots(PARAMS)
stamps.align_dates(PARAMS)


def snapshot(stage):
    return f".ladder/params/{stage}.json"


def code(stage):
    """The modules the stage runs: its own and every ladder module it imports (stamps.code_files),
    taken as ancient(): what they hold is judged by the stamp in the stage's manifest."""
    return [ancient(f) for f in stamps.code_files(stage)]


wildcard_constraints:
    size="|".join(PARAMS.sizes),
    cell="|".join(map(re.escape, PARAMS.sweep.cells())),


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sweep.smk"


rule all:
    input:
        expand("results/{size}/eval.json", size=PARAMS.pipeline.sizes),
        "data/curriculum/scored/plan.json",  # DVC always builds it too: dvc.yaml's score stage
        "results/sweep/optima.json",
    default_target: True


def dvc_stages(jobs):
    """DVC's names for these jobs (DVC knows the sizes in pipeline.sizes)."""
    names = set()
    for job in jobs:
        size = job.wildcards.get("size")
        if job.rule.name == "all" or (size and size not in PARAMS.pipeline.sizes):
            continue
        names.add(ladder_config.stage_name(job.rule.name, size or job.wildcards.get("cell")))
    return sorted(names)


onsuccess:
    # Record what Snakemake built in dvc.lock, so `dvc status` agrees that it is up to date.
    stages = dvc_stages(workflow.dag.jobs)
    if Path(".dvc").is_dir() and stages:
        shell("dvc commit --force --quiet " + " ".join(stages))
