"""`ladder compare -S train.tie_weights=false`: does a change seen small hold up the ladder?

The change becomes a variant under params.yaml's compare.variants (checked first, written like `dvc exp
run -S` writes), and Snakemake builds its ab job: the variant's rungs (arm), both sides' smallest rungs
at more seeds (replica), the baseline's rungs where missing, then both laws and a verdict per size
(stages/ab.py). Everything is an ordinary pipeline job, so a second compare reuses the baseline's
rungs, `dvc exp run --queue` can run one, and a variant reruns exactly when its changes, the recipe or
the data do. --dry-run prints what would train and what it costs first; `ladder compare NAME`
rebuilds if needed and reports an existing variant.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

from ladder.pipeline import config, dag, paths, stamps
from ladder.pipeline.config import VARIANT_KEYS, ConfigError
from ladder.pipeline.files import LadderError, read_json


def parse_sets(sets: list[str]) -> dict:
    """-S key=value pairs (values read as YAML) as a variant's tree of changes."""
    tree: dict = {}
    for item in sets:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise LadderError(f"-S {item!r}: not key=value, e.g. -S train.tie_weights=false")
        parts = key.split(".")
        if parts[0] not in VARIANT_KEYS or (parts[0] == "lr") != (len(parts) == 1) or len(parts) > 2:
            raise LadderError(
                f"-S {key}: a variant changes lr or train.<key> (what the rungs read); data, tokenizer and "
                "curriculum are shared by both arms"
            )
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = config.read_yaml(text)
    return tree


def default_name(tree: dict) -> str:
    """A variant's name from its changes: train.tie_weights=false -> tie_weights-false."""
    leaves = [(k, v) for k, v in tree.items() if k != "train"] + list((tree.get("train") or {}).items())
    return "_".join(f"{k}-{re.sub(r'[^A-Za-z0-9_]+', '_', str(v).lower())}" for k, v in leaves)


def from_experiment(name: str, current: dict) -> dict:
    """A DVC experiment's params as a variant: its lr and train.* where they differ from params.yaml.
    An experiment that changes anything else cannot be a variant (both arms share it), and is refused."""
    p = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], capture_output=True, text=True)
    if p.returncode:
        raise LadderError(f"--exp {name}: `dvc exp show` failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
    revs = [
        (exp.get("revs") or [{}])[0].get("rev")
        for baseline in json.loads(p.stdout or "[]")
        for exp in baseline.get("experiments") or []
        if exp.get("name") == name
    ]
    if not revs or not revs[0]:
        raise LadderError(f"--exp {name}: no such DVC experiment (`dvc exp show` lists them)")
    shown = subprocess.run(["git", "show", f"{revs[0]}:params.yaml"], capture_output=True, text=True)
    if shown.returncode:
        raise LadderError(f"--exp {name}: its params.yaml cannot be read ({shown.stderr.strip()})")
    theirs = config.read_yaml(shown.stdout)
    tree: dict = {}
    if theirs.get("lr") != current.get("lr"):
        tree["lr"] = theirs.get("lr")
    train = {k: v for k, v in (theirs.get("train") or {}).items() if current["train"].get(k) != v}
    if train:
        tree["train"] = train
    other = sorted(
        k for k in set(theirs) | set(current) if k not in (*VARIANT_KEYS, "compare") and theirs.get(k) != current.get(k)
    )
    if other:
        raise LadderError(
            f"--exp {name}: it also changes {', '.join(other)}, which both arms of a comparison share; a variant "
            "changes lr and train.* only"
        )
    if not tree:
        raise LadderError(
            f"--exp {name}: its lr and train.* are the workspace's, nothing to compare (`dvc exp run` applies an "
            "experiment's params to the workspace: restore the baseline's with `git checkout params.yaml`)"
        )
    return tree


def with_variant(raw: dict, name: str, tree: dict) -> tuple[config.Params, bool]:
    """params.yaml's data with the variant added, checked; and whether params.yaml must change."""
    variants = (raw.get("compare") or {}).get("variants") or {}
    if name in variants:
        if tree and variants[name] != tree:
            raise ConfigError(
                f"params.yaml: compare.variants.{name}: exists with other changes ({variants[name]}); "
                "give --name another name, or remove it first"
            )
        return config.validate(raw), False
    if not tree:
        raise LadderError(f"no variant {name!r} in compare.variants: give its changes with -S key=value")
    new = {**raw, "compare": {**raw["compare"], "variants": {**variants, name: tree}}}
    return config.validate(new), True


def write_variant(name: str, tree: dict) -> None:
    """Add the variant to params.yaml as `dvc exp run -S` would, comments and layout kept."""
    from dvc.utils.hydra import apply_overrides

    def leaves(node, prefix):
        for k, v in node.items():
            yield from leaves(v, f"{prefix}.{k}") if isinstance(v, dict) and v else [(f"{prefix}.{k}", v)]

    overrides = [f"++{k}={json.dumps(v)}" for k, v in leaves(tree, f"compare.variants.{name}")]
    apply_overrides(str(paths.PARAMS), overrides)


def needed(params: config.Params, name: str) -> list[tuple[str, str]]:
    """The training runs the comparison still needs: (stage, run) not built from the current params and code."""
    jobs = [  # the scaling ladder's runs: the rungs, the replicas and this variant's arms
        (s, r)
        for s in dag.STAGES
        for r in dag.runs(params, s)
        if "scaling.train" in dag.STAGES[s].params and dag.variant_of(s, r) in (None, name)
    ]
    return [
        (stage, run)
        for stage, run in jobs
        if stamps.built_from(stage, run) != stamps.stamp(params, stage, run)
        or not all(p.exists() for p in dag.outputs(stage, run))
    ]


def cost(params: config.Params, jobs: list[tuple[str, str]]) -> str:
    """What the runs cost: FLOPs, `ladder plan`'s estimate on this machine, and, where the baseline's rungs
    ran here, the time at their measured rate."""
    from ladder.nn import cost as plan

    vocab, _ = plan.vocab_size(params)
    name, rate, _, fp32 = plan.this_device()
    flops = sum(plan.estimate(params.derived(s, r), r, vocab, fp32=fp32).total_flops for s, r in jobs)
    hours = sum(plan.hours(plan.estimate(params.derived(s, r), r, vocab, fp32=fp32), rate) for s, r in jobs)
    counts = ", ".join(f"{n} {s}" for s, n in Counter(s for s, _ in jobs).items())
    line = (
        f"{len(jobs)} training runs ({counts}), {flops / 1e12:.3g} TFLOP: ~{_duration(3600 * hours)} on {name} "
        "by `ladder plan`'s estimate"
    )
    if not paths.SHARD_INDEX.exists():
        line += " (after the data stages, which have not run yet)"
    done = [read_json(paths.rung(r).summary) for r in params.scaling.rungs() if paths.rung(r).summary.exists()]
    seconds = sum(s.get("train_seconds", 0) for s in done)
    if seconds:
        measured = sum(s["flops"] for s in done) / seconds
        line += f", ~{_duration(flops / measured)} at the rate the baseline's rungs trained here"
    return line


def _duration(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.1f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )


def report(name: str) -> str:
    r = read_json(paths.CompareFiles(name).report)
    noise = r["noise"]
    lines = [
        f"{name}: {r['changes']}  (difference = variant / baseline - 1 of the final val loss; below 0 helps)",
        f"noise floor: +-{100 * noise['floor']:.2f}% for one pair of runs (seed sd {100 * noise['sd_log']:.2f}% "
        f"over {noise['dof']} degrees of freedom, shapes {', '.join(noise['shapes'])} at seeds "
        f"{', '.join(map(str, noise['seeds']))})",
        f"{'rung (shape-budget)':<22}{'baseline':>10}{'variant':>10}{'difference':>12}",
    ]
    for x in r["rungs"]:
        lines.append(
            f"{x['run']:<22}{x['baseline']:>10.4f}{x['variant']:>10.4f}{100 * x['relative']:>+11.2f}%"
            + ("  (within noise)" if x["within_noise"] else "")
        )
    lines.append(f"{'size':<10}{'N':>10}{'D':>10}{'difference':>12}  {r['level']:.0%} interval")
    for x in r["sizes"]:
        lo, hi = x["interval"]
        lines.append(
            f"{x['size']:<10}{x['N']:>10.3g}{x['D']:>10.3g}{100 * x['relative']:>+11.2f}%  "
            f"{100 * lo:+.2f}% to {100 * hi:+.2f}%"
        )
    lines += r["summary"]
    lines.append(f"figure: {paths.CompareFiles(name).figure}")
    return "\n".join(lines)


def add_arguments(p) -> None:
    p.add_argument("name", nargs="?", help="the variant's name under compare.variants (default: made from -S)")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "-S",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a change the variant makes: lr=... or train.<key>=... (repeat for several)",
    )
    what.add_argument("--exp", help="a DVC experiment whose lr and train.* are the variant")
    p.add_argument("--dry-run", action="store_true", help="print what would train and what it costs; change nothing")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="Snakemake's --cores (default: all)")


def main(args) -> None:
    if args.params != str(paths.PARAMS):
        raise LadderError(f"--params {args.params}: compare edits and builds the project's {paths.PARAMS} only")
    raw = config.read_raw(args.params)
    tree = from_experiment(args.exp, raw) if args.exp else parse_sets(args.set)
    name = args.name or (default_name(tree) if tree else None)
    if not name:
        raise LadderError("name a variant, or give its changes with -S key=value (or --exp)")
    params, changes = with_variant(raw, name, tree)
    jobs = needed(params, name)
    print(f"compare {name}: {params.compare.variants[name]}")
    print(f"  {cost(params, jobs)}" if jobs else "  every run it needs is built")
    if args.dry_run:
        return
    if changes:
        write_variant(name, tree)
        print(f"  added compare.variants.{name} to {paths.PARAMS}")
    target = str(paths.CompareFiles(name).report)
    p = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(args.cores), target])
    if p.returncode:
        raise LadderError(f"snakemake {target} failed (exit {p.returncode}); its log names the job")
    print(report(name))
