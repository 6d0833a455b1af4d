# Shared by workflow/rules/*.smk: the params snapshot and code of each stage, the plan a size trains on,
# a training job's time limit, and DVC's names for the jobs Snakemake ran.

import math
import os

# What a stage running torch or tokenizers uses, and so the threads its job holds (nn/device.py;
# Snakemake lowers it to --cores).
ALL_CORES = len(os.sched_getaffinity(0))


def snapshot(stage):
    return f".ladder/params/{stage}.json"


def code(stage):
    """The modules the stage runs: its own and every ladder module it imports (stamps.code_files),
    taken as ancient(): what they hold is judged by the stamp in the stage's manifest."""
    return [ancient(f) for f in stamps.code_files(stage)]


def plan(wildcards):
    """The curriculum plan this size trains on (pipeline.sizes; base when unlisted)."""
    folder = f"data/curriculum/{PARAMS.plan_for(wildcards.size)}"
    return [ancient(f"{folder}/order.npy"), f"{folder}/plan.json"]


def train_minutes(size):
    """Twice `ladder plan`'s estimate on the size's GPUs (an H100's rate), at least 15 minutes."""
    from ladder.nn import cost

    return cost.time_limit_minutes(PARAMS, size)


def gpu_mem_gib(stage):
    """A job's device memory in whole GiB by `ladder plan`'s estimate (nn/cost.py), so that a profile
    that declares its card's memory (workflow/profiles/gpu) lets small jobs share the card."""
    from ladder.nn import cost

    def need(wildcards):
        name = run_name(wildcards)
        params = PARAMS.derived("train" if stage in ("score", "eval") else stage, name)
        t = params.train_for(name)
        return math.ceil(cost.estimate(params, name, cost.vocab_size(PARAMS)[0]).memory_gib(t.activation_checkpointing))

    return need


def run_name(wildcards):
    """A job's run as its stage names it: a size, cell, rung, variant-rung (an arm), variant-replica or variant."""
    own = next((wildcards.get(k) for k in ("size", "cell", "rung", "replica") if wildcards.get(k)), None)
    variant = wildcards.get("variant")
    return f"{variant}-{own}" if variant and own else own or variant


def dvc_stages(jobs):
    """DVC's names for these jobs (DVC knows the sizes in pipeline.sizes)."""
    names = set()
    for job in jobs:
        size = job.wildcards.get("size")
        if job.rule.name == "all" or (size and size not in PARAMS.pipeline.sizes):
            continue
        names.add(ladder_dag.job_name(job.rule.name, run_name(job.wildcards)))
    return sorted(names)
