"""The SLURM profile plans the right jobs and resources (a dry run with the real executor plugin;
nothing is submitted, no cluster is needed)."""

from __future__ import annotations

import re

import yaml
from conftest import ROOT, edit_params, sh

PROFILE = "workflow/profiles/slurm"


def jobs(out: str) -> dict[str, dict[str, str]]:
    """rule -> its resources, from a dry run's job listing."""
    found = {}
    for rule, block in re.findall(r"^rule (\w+):\n(.*?)(?=^\[|\Z)", out, re.S | re.M):
        res = re.search(r"resources: (.*)", block)
        found[rule] = dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}
    return found


def test_profile_parses_and_names_the_slurm_executor():
    profile = yaml.safe_load((ROOT / PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and set(profile["set-resources"]) == {
        "score",
        "train",
        "cell",
        "rung",
        "replica",
        "arm",
        "eval",
    }
    assert all("tasks" not in r for r in profile["set-resources"].values())  # one task per GPU job


def test_dry_run_plans_cpu_data_jobs_and_one_gpu_task_per_training(fresh, monkeypatch):
    edit_params(
        fresh,
        lambda p: (
            p["pipeline"]["sizes"].update(small="base"),
            p["sizes"]["small"].update(n_layer=12, n_head=12, n_embd=768),
            p["sizes"]["small"]["train"].update(devices=4, batch_tokens=4096, tokens=10**10),
        ),
    )
    out = sh(f"snakemake --workflow-profile {PROFILE} -n results/small/eval.json", fresh).stdout
    planned = jobs(out)
    assert {"download", "subset", "tokenizer", "shard", "curriculum", "train", "eval"} <= set(planned)
    for rule in ("download", "subset", "tokenizer", "shard", "curriculum"):
        assert planned[rule]["slurm_partition"] == "cpu" and "gpu" not in planned[rule], rule
    train = planned["train"]
    assert train["slurm_partition"] == "gpu" and train["gpu"] == "4" and "tasks" not in train
    # the time limit comes from `ladder plan`: twice its estimate on 4 H100s (GPT-2 small, 10B tokens)
    from ladder.nn import cost
    from ladder.pipeline import config

    monkeypatch.chdir(fresh)  # the plan reads the vocabulary of the project's shards, if any
    assert int(train["runtime"]) == cost.time_limit_minutes(config.load(), "small") > 60
