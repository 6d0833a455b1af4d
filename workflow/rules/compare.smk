# Scale-aware A/B tests: replica -> (rung, arm) -> ab@variant. `ladder compare -S key=value` adds a variant to
# params.yaml's compare.variants and builds its ab job. Each variant trains every scaling rung with its changes
# (arm: variant-shape-budget, at the rungs' seed), beside the baseline's rungs; the baseline trains its
# smallest shapes again at compare.seeds (replica: shape-budget-seed), which measures the seed noise once
# for every variant. ab@variant fits both laws and writes the verdict per size.

REPLICAS = PARAMS.compare.replicas(PARAMS.scaling.budgets)
VARIANTS = list(PARAMS.compare.variants)


rule replica:
    input:
        ancient("data/shards/train"),
        ancient("data/shards/val"),
        "data/shards/index.json",
        ancient("data/curriculum/base/order.npy"),
        "data/curriculum/base/plan.json",
        code("replica"),
        snapshot("replica@{replica}"),
    output:
        "results/scaling/replicas/{replica}/config.json",
        "results/scaling/replicas/{replica}/train.json",
        directory("results/scaling/replicas/{replica}/live"),
    resources:
        gpu=lambda wildcards: PARAMS.replica(wildcards.replica).train_for(wildcards.replica).devices,
        gpu_mem_gib=gpu_mem_gib("replica"),
    log:
        ".ladder/logs/train@{replica}.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder train --replica {wildcards.replica}"


rule arm:
    input:
        ancient("data/shards/train"),
        ancient("data/shards/val"),
        "data/shards/index.json",
        ancient("data/curriculum/base/order.npy"),
        "data/curriculum/base/plan.json",
        code("arm"),
        snapshot("arm@{variant}-{rung}"),
    output:
        "results/compare/{variant}/rungs/{rung}/config.json",
        "results/compare/{variant}/rungs/{rung}/train.json",
        directory("results/compare/{variant}/rungs/{rung}/live"),
    resources:
        gpu=lambda wildcards: PARAMS.arm(f"{wildcards.variant}-{wildcards.rung}").train_for(
            f"{wildcards.variant}-{wildcards.rung}"
        ).devices,
        gpu_mem_gib=gpu_mem_gib("arm"),
    log:
        ".ladder/logs/train@{variant}-{rung}.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder train --arm {wildcards.variant}-{wildcards.rung}"


rule ab:
    input:
        "data/shards/index.json",
        expand("results/scaling/rungs/{rung}/train.json", rung=RUNGS),
        expand("results/scaling/replicas/{replica}/train.json", replica=REPLICAS),
        expand("results/compare/{{variant}}/rungs/{rung}/train.json", rung=RUNGS),
        code("ab"),
        snapshot("ab@{variant}"),
    output:
        "results/compare/{variant}/compare.json",
        report("results/compare/{variant}/compare.png", caption="../report/compare.rst", category="Comparisons"),
    log:
        ".ladder/logs/ab@{variant}.log",
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder ab --variant {wildcards.variant}"
