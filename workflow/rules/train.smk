# Per-size stages: train@size -> eval@size, one job each per entry under sizes: in params.yaml.
# Large inputs are ancient() and tracked through their manifests, as in data.smk.
# results/<size>/ckpt/ (the resumable checkpoint) is deliberately no output here: Snakemake deletes
# a job's outputs before running it, and a rerun after a crash must find the checkpoint.


rule train:
    input:
        ancient("data/shards/train"),
        ancient("data/shards/val"),
        "data/shards/index.json",
        ancient("data/curriculum/order.npy"),
        "data/curriculum/plan.json",
        "src/ladder/train.py",
        "src/ladder/model.py",
        snapshot("train@{size}"),
    output:
        "results/{size}/model.safetensors",
        "results/{size}/config.json",
        "results/{size}/train.json",
        directory("results/{size}/live"),
    shell:
        "ladder train --size {wildcards.size}"


rule eval:
    input:
        ancient("results/{size}/model.safetensors"),
        "results/{size}/config.json",
        "results/{size}/train.json",
        ancient("data/shards/val"),
        "data/shards/index.json",
        ancient("data/subset/val.jsonl"),
        "data/subset/stats.json",
        ancient("data/tokenizer/tokenizer.json"),
        "data/tokenizer/report.json",
        "src/ladder/evaluate.py",
        snapshot("eval@{size}"),
    output:
        "results/{size}/eval.json",
        "results/{size}/samples.md",
    shell:
        "ladder eval --size {wildcards.size}"
