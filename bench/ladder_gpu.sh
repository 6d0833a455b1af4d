#!/usr/bin/env bash
# Climb the ladder on one GPU: tiny, mini and small on a real corpus, through Snakemake, with μP
# so the one base learning rate (tuned at width 128) serves every width.
#
#   bench/ladder_gpu.sh CORPUS [SIZES...]      e.g. bench/ladder_gpu.sh ../shared/data/wiki-large.txt.xz
#
# Extra Snakemake flags go in SNAKEMAKE_FLAGS (e.g. --no-hooks where DVC is not installed).
# Token budgets are chosen to take a few minutes each on an H100; edit below for longer runs.
set -euo pipefail
corpus=$1; shift
sizes=${*:-tiny mini small}
python3 - "$corpus" <<'PY'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["data"].update(source=sys.argv[1], max_bytes=None)
p["tokenizer"]["vocab_size"] = 32768
p["train"].update(seq_len=1024, mup=True, mup_base_width=128, warmup_frac=0.1, eval_every=50,
                  eval_tokens=1048576, checkpoint_every=100, log_every=10)
# (tokens, batch tokens, micro-batch). One batch for every width: μP carries the learning rate
# across widths at a fixed batch and schedule, and 64k tokens leaves each size hundreds of steps.
budgets = {"tiny": (40_000_000, 65536, 64), "mini": (60_000_000, 65536, 64), "small": (100_000_000, 65536, 32)}
for name, (tokens, batch, micro) in budgets.items():
    p["sizes"][name]["train"] = {"tokens": tokens, "batch_tokens": batch, "micro_batch": micro}
p["eval"]["max_tokens"] = 2097152
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PY
targets=$(for s in $sizes; do printf 'results/%s/eval.json ' "$s"; done)
snakemake --workflow-profile workflow/profiles/gpu ${SNAKEMAKE_FLAGS:-} $targets
ladder summary $sizes
