"""Stage ab@variant: does the variant's effect at the rungs hold up the ladder? (`ladder compare` runs it.)

The variant (compare.variants.<name>) trained every scaling rung with its changes (stage `arm`), at the
rungs' seed, beside the baseline's rungs; both sides trained their smallest shapes again at compare.seeds
(stage `replica`), which measures the seed noise. This stage fits both laws (one per budget, as the fit
does), pairs the rungs, and predicts the difference at every size under sizes: with an interval, a
verdict (helps, hurts, within noise), whether the effect grows, holds or shrinks with N, and where it
flips sign if it does (analysis/ab.py says how). It writes results/compare/<variant>/compare.json and
compare.png.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ladder.analysis import ab, scaling
from ladder.nn import recipe
from ladder.nn.model import GPT
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import REPLICA, RUNG, Params, load
from ladder.pipeline.files import atomic, need, read_json, write_json
from ladder.pipeline.progress import log


def runs(params: Params, variant: str) -> pd.DataFrame:
    """One row per run of the comparison: side (baseline or variant), run (its rung), seed, N, D, final val loss."""
    rows = []

    def add(side: str, rung: str, seed: int, files: paths.RunFiles, what: str) -> None:
        s = read_json(need(files.summary, what))
        n = s["params_non_embedding"] if params.scaling.n == "non_embedding" else s["params"]
        shape, _ = RUNG.fullmatch(rung).groups()
        rows.append(dict(side=side, run=rung, shape=shape, seed=seed, N=n, D=s["tokens"], val_loss=s["final_val_loss"]))

    for rung in params.scaling.rungs():
        add("baseline", rung, params.seed, paths.rung(rung), f"scaling rung {rung}")
        add("variant", rung, params.seed, paths.arm(f"{variant}-{rung}"), f"{variant}'s rung {rung}")
    for replica in params.compare.replicas(params.scaling.budgets):
        of, side, shape, budget, seed = REPLICA.fullmatch(replica).groups()
        if of == variant:
            add(side, f"{shape}-{budget}", int(seed), paths.replica(replica), f"replica {replica}")
    return pd.DataFrame(rows)


def size_points(params: Params, vocab: int) -> list[tuple[str, float, float]]:
    """(size, N, D) of every size under sizes:, as predict@size computes them."""
    out = []
    for size in params.sizes:
        t = params.train_for(size)
        with torch.device("meta"):
            model = GPT(recipe.model_config(params, size, vocab))
        out.append(
            (
                size,
                model.num_params(non_embedding=params.scaling.n == "non_embedding"),
                recipe.steps(t, model) * t.batch_tokens,
            )
        )
    return out


def run(params: Params, variant: str) -> dict:
    params.variant(variant)  # a variant that is not there is named as such, before any file is read
    s, level = params.scaling, params.scaling.interval
    index = read_json(need(paths.SHARD_INDEX, "the shard index"))
    df = runs(params, variant)
    main = df[df["seed"] == params.seed]
    noise_groups = [g["val_loss"].tolist() for _, g in df.groupby(["side", "run"]) if len(g) > 1]
    sd, dof = ab.seed_noise(noise_groups)
    noise_floor = ab.floor(sd, level)
    rows = {side: main[main["side"] == side].to_dict("records") for side in ("baseline", "variant")}
    base = ab.laws(rows["baseline"], s.bootstrap, s.huber_delta, sd)
    var = ab.laws(rows["variant"], s.bootstrap, s.huber_delta, sd)
    test = ab.extrapolation_test(rows["baseline"], rows["variant"], s.bootstrap, s.huber_delta, sd)

    paired = []
    for b, v in zip(rows["baseline"], rows["variant"]):
        d = float(np.log(v["val_loss"] / b["val_loss"]))
        paired.append(
            {
                "run": b["run"],
                "N": b["N"],
                "D": b["D"],
                "baseline": b["val_loss"],
                "variant": v["val_loss"],
                "difference": round(d, 5),
                "relative": round(float(np.expm1(d)), 5),
                "within_noise": bool(abs(d) <= noise_floor),
            }
        )
    n_min = min(r["N"] for r in paired)
    sizes = []
    for size, n, d in size_points(params, index["vocab_size"]):
        diff = ab.difference(base, var, n, d, level, test["per_efold"])
        start = ab.difference(base, var, n_min, d, level, test["per_efold"])
        flip = ab.crossing(base, var, n_min, n, d)
        sizes.append(
            {
                "size": size,
                "N": n,
                "D": d,
                "baseline": round(float(scaling.value(base, n, d)[0]), 5),
                "variant": round(float(scaling.value(var, n, d)[0]), 5),
                "relative": round(float(np.expm1(diff.value)), 5),
                "interval": [round(float(np.expm1(diff.low)), 5), round(float(np.expm1(diff.high)), 5)],
                "beyond_rungs": {"N": round(diff.beyond_n, 2), "D": round(diff.beyond_d, 2)},
                "verdict": ab.verdict(diff, noise_floor),
                "trend": ab.trend(start, diff, noise_floor, level),
                "flips_at_N": None if flip is None else round(flip),
                "warnings": reach(diff, test),
            }
        )
    result = {
        "variant": variant,
        "changes": params.compare.variants[variant],
        "difference": "variant / baseline - 1 of the final val loss: below 0 the change helps",
        "level": level,
        "noise": {
            "shapes": params.compare.noise_shapes,
            "seeds": [params.seed, *params.compare.seeds],
            "sd_log": round(sd, 6),
            "dof": dof,
            "floor": round(float(np.expm1(noise_floor)), 6),
            "floor_why": f"the {level:.0%} half-width of one pair's difference from seed noise alone",
        },
        "rungs": paired,
        "sizes": sizes,
        "extrapolation": test,
        "laws": {
            arm: [
                {
                    "D": b.tokens,
                    "params": dict(zip(("E", "A", "alpha"), scaling.as_list(b.law))),
                    "scatter": round(b.sigma, 6),
                    "n_max": b.n_max,
                    "refits": [scaling.as_list(x) for x in b.refits],
                }
                for b in budgets
            ]
            for arm, budgets in (("baseline", base), ("variant", var))
        },
        "summary": summary(variant, sizes),
        "built_from": stamps.stamp(params, "ab", variant),
    }
    files = paths.CompareFiles(variant)
    with atomic(files.report, files.figure) as (tmp_json, tmp_png):
        plot(df, base, var, result, tmp_png)
        write_json(tmp_json, result)
    return result


def reach(diff: ab.Difference, test: dict) -> list[str]:
    """What a size's difference rests on beyond what was measured, as predict@size says it of a loss."""
    out = []
    tested = max((c["factor"] for c in test["cases"]), default=1.0)
    if diff.beyond_n > tested * 1.01:
        out.append(
            f"N is {diff.beyond_n:.3g}x the largest rung, beyond the {tested:g}x the difference's extrapolation "
            "test checked: the interval assumes its error per e-fold holds"
        )
    if diff.beyond_d > 1.01:
        out.append(
            f"D is {diff.beyond_d:.3g}x outside the rungs' budgets: the difference there is read off the nearest "
            "budgets, untested along D; add the size's budget to scaling.budgets"
        )
    return out


def summary(variant: str, sizes: list[dict]) -> list[str]:
    """A line per size: the verdict in words."""
    out = []
    for x in sizes:
        lo, hi = x["interval"]
        line = (
            f"{x['size']}: {variant} {x['verdict']} ({100 * x['relative']:+.2f}% val loss, "
            f"{100 * lo:+.2f}% to {100 * hi:+.2f}%); the effect {x['trend']} from the rungs"
        )
        if x["flips_at_N"]:
            line += f" and flips sign near N = {x['flips_at_N']:.3g}"
        out += [line, *(f"  {x['size']}: {w}" for w in x["warnings"])]
    return out


def plot(df: pd.DataFrame, base, var, result: dict, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.8))
    df = df.assign(tokens=df["D"].map(lambda d: f"{d / 1e6:.3g}M"))
    order = sorted(df["tokens"].unique(), key=lambda t: float(t[:-1]))
    hues = dict(zip(order, sns.color_palette("viridis", len(order))))
    n_hi = max([x["N"] for x in result["sizes"]] + [df["N"].max()]) * 1.5
    grid = np.geomspace(df["N"].min() / 1.5, n_hi, 60)
    for arm, budgets in (("baseline", base), ("variant", var)):
        for b in budgets:
            color = hues[f"{b.tokens / 1e6:.3g}M"]
            left.plot(grid, b.law.loss(grid), color=color, lw=1.2, ls="-" if arm == "baseline" else "--")
    sns.scatterplot(
        data=df,
        x="N",
        y="val_loss",
        hue="tokens",
        palette=hues,
        style="side",
        markers={"baseline": "o", "variant": "X"},
        s=55,
        ax=left,
    )
    left.set(
        xscale="log",
        xlabel="N",
        ylabel="final val loss",
        title="both laws (variant dashed), all rungs and replicas",
    )
    left.legend(fontsize=8)
    # the difference along N at each budget, with its interval; the sizes at their own (N, D)
    level, per_efold = result["level"], result["extrapolation"]["per_efold"]
    r = pd.DataFrame(result["rungs"])
    for b in base:
        color = hues[f"{b.tokens / 1e6:.3g}M"]
        diffs = [ab.difference(base, var, n, b.tokens, level, per_efold) for n in grid]
        right.plot(grid, [100 * np.expm1(x.value) for x in diffs], color=color, lw=1.2)
        right.fill_between(
            grid,
            [100 * np.expm1(x.low) for x in diffs],
            [100 * np.expm1(x.high) for x in diffs],
            color=color,
            alpha=0.15,
            lw=0,
        )
        at = r[r["D"] == b.tokens]
        right.scatter(at["N"], 100 * at["relative"], color=color, zorder=3, s=25)
    f = 100 * result["noise"]["floor"]
    right.axhspan(-f, f, color="grey", alpha=0.2, lw=0, label="noise floor (one pair)")
    right.axhline(0, color="grey", lw=0.8)
    for x in result["sizes"]:
        lo, hi = (100 * v for v in x["interval"])
        y = 100 * x["relative"]
        right.errorbar(x["N"], y, yerr=[[y - lo], [hi - y]], fmt="s", color="C3", capsize=3)
        right.annotate(
            f"{x['size']}: {x['verdict']}", (x["N"], y), textcoords="offset points", xytext=(5, 6), fontsize=8
        )
    right.set(
        xscale="log",
        xlabel="N",
        ylabel="variant / baseline - 1 (%)",
        title=f"difference along N, {level:.0%} interval; sizes: squares",
    )
    right.legend(fontsize=8, loc="best")
    fig.suptitle(f"{result['variant']}: {result['changes']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight", format="png")  # atomic: run()'s temporary sibling
    plt.close(fig)


def add_arguments(p) -> None:
    p.add_argument("--variant", required=True, help="a variant under compare.variants (its arms must be trained)")


def main(args) -> None:
    result = run(load(args.params), args.variant)
    for line in result["summary"]:
        log.info("ab@%s: %s", args.variant, line)
    print(f"wrote {paths.CompareFiles(args.variant).report} and {paths.CompareFiles(args.variant).figure}")
