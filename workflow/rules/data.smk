# Data stages: corpus -> subset -> tokenizer -> shards -> curriculum plan (base).
#
# Each rule's inputs are its upstream files, its code (the modules it runs) and its params snapshot.
# Every stage
# writes a small manifest holding the sha256 of its large outputs; downstream rules take the large
# files as ancient() (their mtime is ignored) and the manifest as a plain input, whose content
# Snakemake compares when its mtime moves. So a checkout that rewrites files with new timestamps
# but the same content reruns nothing, and a real change reruns what depends on it.


rule download:
    input:
        ancient("data/embedded/wiki-small.txt.xz"),
        "data/embedded/SHA256SUMS",
        code("download"),
        snapshot("download"),
    output:
        "data/raw/docs.jsonl",
        "data/raw/manifest.json",
    log:
        ".ladder/logs/download.log",
    threads: 1
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder download"


rule subset:
    input:
        ancient("data/raw/docs.jsonl"),
        "data/raw/manifest.json",
        code("subset"),
        snapshot("subset"),
    output:
        "data/subset/train.jsonl",
        "data/subset/val.jsonl",
        report("data/subset/stats.json", caption="../report/subset.rst", category="Data"),
    log:
        ".ladder/logs/subset.log",
    threads: 1
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder subset"


rule tokenizer:
    input:
        ancient("data/subset/train.jsonl"),
        ancient("data/subset/val.jsonl"),
        "data/subset/stats.json",
        code("tokenizer"),
        snapshot("tokenizer"),
    output:
        "data/tokenizer/tokenizer.json",
        report("data/tokenizer/report.json", caption="../report/tokenizer.rst", category="Data"),
    log:
        ".ladder/logs/tokenizer.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder tokenizer"


rule shard:
    input:
        ancient("data/subset/train.jsonl"),
        ancient("data/subset/val.jsonl"),
        "data/subset/stats.json",
        ancient("data/tokenizer/tokenizer.json"),
        "data/tokenizer/report.json",
        code("shard"),
        snapshot("shard"),
    output:
        directory("data/shards/train"),
        directory("data/shards/val"),
        "data/shards/index.json",
    log:
        ".ladder/logs/shard.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder shard"


rule curriculum:
    input:
        ancient("data/shards/train"),
        "data/shards/index.json",
        code("curriculum"),
        snapshot("curriculum"),
    output:
        "data/curriculum/base/order.npy",
        "data/curriculum/base/plan.json",
    log:
        ".ladder/logs/curriculum.log",
    threads: 1
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder curriculum"
