#!/usr/bin/env bash
# Does the torchrun path cost anything on one GPU? bench/throughput.py plain, then under
# `torchrun --nproc_per_node=1` (the model wrapped in DDP, as `train.devices` > 1 runs it), twice
# each, alternating, in one call: the plain runs are the control and their spread the noise.
#
#   bench/torchrun_overhead.sh [OUT_DIR] [SIZES...]        e.g. bench/torchrun_overhead.sh /tmp/out small medium
set -euo pipefail
out=${1:-.}; shift || true
sizes=${*:-small medium}
B="bench/throughput.py --sizes $sizes --steps 20 --warmup 5"
for i in 1 2; do
  python3 $B --json "$out/plain$i.json" > "$out/plain$i.log" 2>&1
  python3 -m torch.distributed.run --standalone --nproc_per_node=1 $B --json "$out/ddp$i.json" > "$out/ddp$i.log" 2>&1
done
python3 - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = {f.stem: {r["size"]: r["tok_s"] for r in json.loads(f.read_text())} for f in sorted(out.glob("*.json"))}
sizes = list(next(iter(rows.values())))
print("| run | " + " | ".join(f"{s} tokens/s" for s in sizes) + " |")
print("|---|" + "---|" * len(sizes))
for name, r in rows.items():
    print(f"| {name} | " + " | ".join(f"{r[s]:,.0f}" for s in sizes) + " |")
for s in sizes:
    plain = [rows[k][s] for k in rows if k.startswith("plain")]
    ddp = [rows[k][s] for k in rows if k.startswith("ddp")]
    mean = lambda xs: sum(xs) / len(xs)
    print(f"{s}: torchrun/DDP vs plain {100 * (mean(ddp) / mean(plain) - 1):+.2f}% "
          f"(plain spread {100 * (max(plain) - min(plain)) / mean(plain):.2f}%)")
PY
