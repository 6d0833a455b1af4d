# The scaling ladder: rung -> fit -> predict@size -> (eval@size). One rung per shape x budget of
# params.yaml's scaling: block, named as DVC's matrix names them (shape-budget); each is a real
# training run of the train stage's code with the shipped recipe (seed, lr, train:) on the base plan.
# The fit reads the rungs only, and predict@size reads the fit and the size's shape and budget only:
# a size's prediction never waits for, or depends on, its own training. Their priority makes the
# scheduler run them before any training that is ready at the same time, so each prediction is on
# record before its size starts (an order, not an edge: a new fit retrains nothing).

RUNGS = PARAMS.scaling.rungs()


rule rung:
    priority: 10
    input:
        ancient("data/shards/train"),
        ancient("data/shards/val"),
        "data/shards/index.json",
        ancient("data/curriculum/base/order.npy"),
        "data/curriculum/base/plan.json",
        code("rung"),
        snapshot("rung@{rung}"),
    output:
        "results/scaling/rungs/{rung}/config.json",
        "results/scaling/rungs/{rung}/train.json",
        directory("results/scaling/rungs/{rung}/live"),
    resources:
        gpu=lambda wildcards: PARAMS.rung(wildcards.rung).train_for(wildcards.rung).devices,
        gpu_mem_gib=gpu_mem_gib("rung"),
    log:
        ".ladder/logs/train@{rung}.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder train --rung {wildcards.rung}"


rule fit:
    priority: 10
    input:
        "data/shards/index.json",
        expand("results/scaling/rungs/{rung}/train.json", rung=RUNGS),
        code("fit"),
        snapshot("fit"),
    output:
        "results/scaling/fit.json",
        report("results/scaling/fit.png", caption="../report/fit.rst", category="Scaling law"),
    log:
        ".ladder/logs/fit.log",
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder fit"


rule predict:
    priority: 10
    input:
        "results/scaling/fit.json",
        "data/shards/index.json",
        code("predict"),
        snapshot("predict@{size}"),
    output:
        "results/{size}/prediction.json",
    log:
        ".ladder/logs/predict@{size}.log",
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder predict --size {wildcards.size}"
