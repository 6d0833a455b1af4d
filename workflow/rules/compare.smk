# Scale-aware A/B tests: (rung, arm, replica) -> ab@variant. `ladder compare -S key=value` adds a variant to
# params.yaml's compare.variants and builds its ab job. Each variant trains every scaling rung with its changes
# (arm: variant-shape-budget, at the rungs' seed), beside the baseline's rungs; both sides train their
# smallest shapes again at compare.seeds (replica: variant-side-shape-budget-seed), which measures the seed
# noise. ab@variant fits both laws and writes the verdict per size. Nothing here runs without a variant.


rule replica:
    input:
        ancient("data/shards/train"),
        ancient("data/shards/val"),
        "data/shards/index.json",
        ancient("data/curriculum/base/order.npy"),
        "data/curriculum/base/plan.json",
        code("replica"),
        snapshot("replica@{variant}-{replica}"),
    output:
        "results/compare/{variant}/replicas/{replica}/config.json",
        "results/compare/{variant}/replicas/{replica}/train.json",
        directory("results/compare/{variant}/replicas/{replica}/live"),
    resources:
        gpu=lambda wildcards: PARAMS.replica(run_name(wildcards)).train_for(run_name(wildcards)).devices,
        gpu_mem_gib=gpu_mem_gib("replica"),
    log:
        ".ladder/logs/train@{variant}-{replica}.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder train --replica {wildcards.variant}-{wildcards.replica}"


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
        gpu=lambda wildcards: PARAMS.arm(run_name(wildcards)).train_for(run_name(wildcards)).devices,
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
        expand(
            "results/compare/{{variant}}/replicas/{side}-{shape}-{budget}-{seed}/train.json",
            side=ladder_config.SIDES,
            shape=PARAMS.compare.noise_shapes,
            budget=PARAMS.scaling.budgets,
            seed=PARAMS.compare.seeds,
        ),
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
