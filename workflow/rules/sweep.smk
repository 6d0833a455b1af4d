# The learning-rate transfer sweep: cell -> sweep. One cell per shape x parametrization x lr x seed
# of params.yaml's sweep: block, named as DVC's matrix names them (shape-parametrization-lr-seed);
# each is a real training run of the train stage's code on the base plan, at sweep.train's budget.
# A cell reads no lr or seed from params.yaml (they are in its name), so `dvc exp run -S lr=...`
# reruns no cell; adding an lr to sweep.lrs adds cells and reruns only the report.

CELLS = PARAMS.sweep.cells()


rule cell:
    input:
        ancient("data/shards/train"),
        ancient("data/shards/val"),
        "data/shards/index.json",
        ancient("data/curriculum/base/order.npy"),
        "data/curriculum/base/plan.json",
        code("cell"),
        snapshot("cell@{cell}"),
    output:
        "results/sweep/cells/{cell}/config.json",
        "results/sweep/cells/{cell}/train.json",
        directory("results/sweep/cells/{cell}/live"),
    resources:
        gpu=lambda wildcards: PARAMS.cell(wildcards.cell).train_for(wildcards.cell).devices,
        gpu_mem_gib=gpu_mem_gib("cell"),
    log:
        ".ladder/logs/train@{cell}.log",
    threads: ALL_CORES
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder train --cell {wildcards.cell}"


rule sweep:
    input:
        expand("results/sweep/cells/{cell}/train.json", cell=CELLS),
        code("sweep"),
        snapshot("sweep"),
    output:
        "results/sweep/optima.json",
        report("results/sweep/sweep.png", caption="../report/sweep.rst", category="Learning-rate transfer"),
    log:
        ".ladder/logs/sweep.log",
    conda:
        "../envs/ladder.yaml"
    shell:
        "ladder sweep"
