#!/usr/bin/env bash
# Climb the whole ladder on one GPU through Snakemake: the scaling rungs and their fit, the predictions
# for every size written before any size trains, then tiny -> mini -> small -> medium, each evaluated
# against its prediction.
#
#   bench/ladder_gpu.sh CORPUS [SIZES...]      e.g. bench/ladder_gpu.sh ../shared/data/wiki-large.txt.xz
#
# params.yaml is rewritten by bench/wiki_large.py (every size at 30M tokens, one batch, the GPU rung
# grid). Extra Snakemake flags go in SNAKEMAKE_FLAGS (e.g. --no-hooks where DVC is not installed).
set -euo pipefail
corpus=$1; shift
sizes=${*:-tiny mini small medium}
python3 bench/wiki_large.py "$corpus"
profile="--workflow-profile workflow/profiles/gpu ${SNAKEMAKE_FLAGS:-}"
predictions=$(for s in $sizes; do printf 'results/%s/prediction.json ' "$s"; done)
snakemake $profile $predictions            # rungs -> fit -> predict@size: on record before training
targets=$(for s in $sizes; do printf 'results/%s/eval.json ' "$s"; done)
snakemake $profile $targets
ladder summary $sizes
ladder log
