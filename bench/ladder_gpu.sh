#!/usr/bin/env bash
# Climb the whole ladder on one GPU through Snakemake: the scaling rungs and their fit, the predictions
# for every size written before any size trains, then every size, each evaluated against its
# prediction. Rungs and small sizes share the card (workflow/profiles/gpu).
#
#   bench/ladder_gpu.sh CORPUS [--size NAME=wW-dD ...]   e.g. bench/ladder_gpu.sh ../shared/data/wiki-large.txt.xz
#
# params.yaml is rewritten by bench/wiki_large.py (every size at 30M tokens, one batch, the GPU rung
# grid); --size adds a size of that shape to the climb (one no file names, to test the prediction).
# Extra Snakemake flags go in SNAKEMAKE_FLAGS. The climb's wall time is written to results/climb.json.
set -euo pipefail
corpus=$1; shift
python3 bench/wiki_large.py "$corpus" "$@"
sizes="tiny mini small medium"
while [ $# -gt 0 ]; do [ "$1" = --size ] && sizes="$sizes ${2%%=*}" && shift; shift; done
start=$(date +%s)
profile="--workflow-profile workflow/profiles/gpu ${SNAKEMAKE_FLAGS:-}"
predictions=$(for s in $sizes; do printf 'results/%s/prediction.json ' "$s"; done)
snakemake $profile $predictions            # rungs -> fit -> predict@size: on record before training
predicted=$(date +%s)
targets=$(for s in $sizes; do printf 'results/%s/eval.json ' "$s"; done)
snakemake $profile $targets
end=$(date +%s)
printf '{"seconds": %d, "to_predictions": %d, "sizes": "%s"}\n' $((end - start)) $((predicted - start)) "$sizes" \
    > results/climb.json
ladder summary $sizes
ladder log
echo "climb: $((end - start)) s ($((predicted - start)) s to every prediction)"
