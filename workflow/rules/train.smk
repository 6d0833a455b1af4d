# Per-size stages: train@size -> eval@size, one job each per entry under sizes: in params.yaml, and
# the score stage between the scorer's training and the sizes that train on the scored plan.
# Large inputs are ancient() and tracked through their manifests, as in data.smk.
# results/<size>/ckpt/ (the resumable checkpoint) is deliberately no output here: Snakemake deletes
# a job's outputs before running it, and a rerun after a crash must find the checkpoint.


SCORER = PARAMS.curriculum.scorer


rule score:
    input:
        ancient("data/shards/train"),
        "data/shards/index.json",
        ancient(f"results/{SCORER}/model.safetensors"),
        f"results/{SCORER}/config.json",
        f"results/{SCORER}/train.json",
        ancient("data/tokenizer/tokenizer.json"),
        "data/tokenizer/report.json",
        code("score"),
        snapshot("score"),
    output:
        "data/curriculum/scored/order.npy",
        "data/curriculum/scored/plan.json",
        "data/curriculum/scored/scores.npy",
    resources:
        gpu_mem_gib=lambda wildcards: gpu_mem_gib("score")({"size": SCORER}),
    log:
        ".ladder/logs/score.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder score"


rule train:
    input:
        ancient("data/shards/train"),
        ancient("data/shards/val"),
        "data/shards/index.json",
        plan,
        code("train"),
        snapshot("train@{size}"),
    output:
        "results/{size}/model.safetensors",
        "results/{size}/config.json",
        "results/{size}/train.json",
        directory("results/{size}/live"),
        "results/{size}/loss.tsv",
        "results/{size}/val_loss.tsv",
    resources:
        # One task holding train.devices GPUs: `ladder train` starts torchrun, one process per GPU.
        gpu=lambda wildcards: PARAMS.train_for(wildcards.size).devices,
        gpu_mem_gib=gpu_mem_gib("train"),
        runtime=lambda wildcards: train_minutes(wildcards.size),  # minutes, for a cluster's time limit
    log:
        ".ladder/logs/train@{size}.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder train --size {wildcards.size}"


rule eval:
    input:
        ancient("results/{size}/model.safetensors"),
        "results/{size}/config.json",
        "results/{size}/train.json",
        "results/{size}/prediction.json",
        ancient("results/{size}/loss.tsv"),
        ancient("results/{size}/val_loss.tsv"),
        ancient("data/shards/val"),
        "data/shards/index.json",
        ancient("data/subset/val.jsonl"),
        "data/subset/stats.json",
        ancient("data/tokenizer/tokenizer.json"),
        "data/tokenizer/report.json",
        code("eval"),
        snapshot("eval@{size}"),
    output:
        report("results/{size}/eval.json", caption="../report/eval.rst", category="Evaluation",
               labels={"size": "{size}", "file": "metrics"}),
        "results/{size}/eval_provenance.json",
        report("results/{size}/samples.md", caption="../report/samples.rst", category="Evaluation",
               labels={"size": "{size}", "file": "samples"}),
        report("results/{size}/curves.png", caption="../report/curves.rst", category="Evaluation",
               labels={"size": "{size}", "file": "curves"}),
    resources:
        gpu_mem_gib=gpu_mem_gib("eval"),
    log:
        ".ladder/logs/eval@{size}.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder eval --size {wildcards.size}"
