"""Stage fit: what the cheap runs say the big ones will give. The law fitted to the scaling rungs.

Each rung (stage `rung`, `ladder train --rung NAME`) trains one shape x budget of params.yaml's
scaling: grid with the shipped recipe, at the batch and schedule the sizes train with. This stage fits
L_D(N) = E_D + A_D / N^alpha_D at each budget D (analysis/scaling.py says why one law per budget), runs
the extrapolation test (leave the largest shape out, and with 3 budgets or more the largest budget),
and writes results/scaling/fit.json and fit.png. The rungs in scaling.holdout are trained but kept
out of the fit: its predictions for them, against what they reached, say how far to trust it.
Predictions for the named sizes are stage `predict`, one per size, from this file only.

N is scaling.n: non-embedding by default (see N_WHY). D is the tokens a rung saw; every rung stays
within one epoch of the train split (`ladder train --rung` refuses more), so no rung repeats data
and the law needs no term for repeats (Muennighoff et al. 2023 model them; we avoid them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ladder.analysis import scaling
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import RUNG, SHAPE, Params, load
from ladder.pipeline.files import atomic, need, read_json, write_json
from ladder.pipeline.progress import log, progress

N_WHY = {
    "non_embedding": "the token embedding is a lookup: it costs no FLOPs per token, and at these widths it is "
    "most of a small model's parameters, so counting it bends the law at the small end "
    "(Kaplan et al. 2020 fit non-embedding N for this reason)",
    "total": "every parameter, embedding included, as Chinchilla (Hoffmann et al. 2022) counts them",
}


def rungs(params: Params) -> pd.DataFrame:
    """One row per rung: its shape, N (both counts), tokens seen, epochs over the train split, final val loss."""
    train_tokens = read_json(need(paths.SHARD_INDEX, "the shard index"))["train"]["tokens"]
    rows = []
    for name in params.scaling.rungs():
        shape, _ = RUNG.fullmatch(name).groups()
        width, depth = map(int, SHAPE.fullmatch(shape).groups())
        s = read_json(need(paths.rung(name).summary, f"scaling rung {name}"))
        n = s["params_non_embedding"] if params.scaling.n == "non_embedding" else s["params"]
        rows.append(
            dict(
                rung=name,
                shape=shape,
                width=width,
                depth=depth,
                N=n,
                params=s["params"],
                D=s["tokens"],
                epochs=round(s["tokens"] / train_tokens, 3),
                flops=s["flops"],
                val_loss=s["final_val_loss"],
                held_out=name in params.scaling.holdout,
            )
        )
    return pd.DataFrame(rows)


def frontier(budgets: list[scaling.Budget], df: pd.DataFrame) -> list[dict]:
    """The lowest predicted loss along C = 6 N D, searched where D lies between the budgets (none with
    one budget: the fit has not measured how loss trades N against D). `edge` marks an optimum on the
    searched range's boundary, which may lie beyond it."""
    lo, hi = min(b.tokens for b in budgets), max(b.tokens for b in budgets)
    if lo == hi:
        return []
    out = []
    first, last = np.floor(np.log10(6 * df["N"].min() * lo)), np.ceil(np.log10(6 * df["N"].max() * hi))
    for c in 10 ** np.arange(first, last + 0.5, 0.5):
        d = np.geomspace(lo, hi, 41)
        n = c / (6 * d)
        losses = np.array([scaling.value(budgets, x, y)[0] for x, y in zip(n, d)])
        i = int(np.argmin(losses))
        out.append(
            {
                "flops": float(c),
                "N": float(n[i]),
                "D": float(d[i]),
                "val_loss": round(float(losses[i]), 5),
                "edge": i in (0, len(d) - 1),
            }
        )
    return out


def plot(
    df: pd.DataFrame, budgets: list[scaling.Budget], test: dict, level: float, per_efold: dict, n_kind: str, out
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    df = df.assign(
        tokens=df["D"].map(lambda d: f"{d / 1e6:.3g}M"), kind=df["held_out"].map({False: "fitted", True: "held out"})
    )
    hues = dict(
        zip(
            sorted(df["tokens"].unique(), key=lambda t: float(t[:-1])),
            sns.color_palette("viridis", df["tokens"].nunique()),
        )
    )
    grid = np.geomspace(df["N"].min() / 1.5, df["N"].max() * 100, 40)
    for b in budgets:
        tokens = f"{b.tokens / 1e6:.3g}M"
        band = [scaling.predict([b], n, b.tokens, level, per_efold) for n in grid]
        left.plot(grid, [p.value for p in band], color=hues[tokens], lw=1.2)
        left.fill_between(grid, [p.low for p in band], [p.high for p in band], color=hues[tokens], alpha=0.15, lw=0)
    sns.scatterplot(
        data=df,
        x="N",
        y="val_loss",
        hue="tokens",
        palette=hues,
        style="kind",
        markers={"fitted": "o", "held out": "X"},
        s=70,
        ax=left,
    )
    left.axvline(df["N"].max(), color="grey", lw=0.8, ls=":")
    left.set(
        xscale="log",
        xlabel=f"N ({n_kind.replace('_', '-')} parameters)",
        ylabel="final val loss (nats/token)",
        title=f"rungs and the law per budget, {level:.0%} interval for one run (to 100x the largest rung)",
    )
    left.legend(fontsize=8)
    t = pd.DataFrame({k: test[k] for k in ("left_out", "along", "factors", "errors", "sd")})
    if len(t):
        t["label"] = [f"{r} (x{f:g} in {a})" for r, f, a in zip(t["left_out"], t["factors"], t["along"])]
        right.errorbar(100 * t["errors"], t["label"], xerr=100 * 1.645 * t["sd"], fmt="o", color="black", capsize=3)
        right.axvline(0, color="grey", lw=0.8)
        right.set(
            xlabel="error of the refit's prediction (%), with its statistical 90% interval",
            ylabel="",
            title="extrapolation test: each left out, refitted, predicted",
        )
    else:
        right.text(
            0.5,
            0.5,
            "no extrapolation test: it needs 5 shapes at a budget\n(or 3 budgets)",
            ha="center",
            va="center",
            transform=right.transAxes,
        )
        right.set_axis_off()
    laws = "; ".join(
        f"{b.tokens / 1e6:.3g}M tokens: {b.law.E:.3g} + {b.law.A:.3g} / N^{b.law.alpha:.3f}" for b in budgets
    )
    fig.suptitle(f"L_D(N) = E + A / N^alpha per budget D  ({laws})", y=1.0, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight", format="png")  # atomic: run()'s temporary sibling
    plt.close(fig)


def run(params: Params) -> dict:
    s = params.scaling
    df = rungs(params)
    fitted = df[~df["held_out"]]
    groups = list(fitted.groupby("D"))
    budgets = []
    for d, by in progress(len(groups), desc="fit", unit="budget", iterable=groups):
        budgets.append(scaling.build(int(d), by["N"], by["val_loss"], s.bootstrap, s.huber_delta))
    test = scaling.extrapolation_test(
        fitted.to_dict("records"), {b.tokens: b for b in budgets}, s.bootstrap, s.huber_delta, s.interval
    )
    rows = []
    for r in df.to_dict("records"):
        p = scaling.predict(budgets, r["N"], r["D"], s.interval, test["per_efold"])
        rows.append(
            r
            | {
                "fitted": round(p.value, 5),
                "interval": [round(p.low, 5), round(p.high, 5)],
                "log_residual": round(float(np.log(r["val_loss"] / p.value)), 5),
                "error": round(r["val_loss"] / p.value - 1, 5),
            }
        )
    tail = (1 - s.interval) / 2 * 100
    spread = {b.tokens: np.array([scaling.as_list(x) for x in b.refits]).T for b in budgets}
    result = {
        "law": "L_D(N) = E + A / N^alpha at each rung budget D; between budgets log L is linear in log D",
        "budgets": [
            {
                "D": b.tokens,
                "params": dict(zip(("E", "A", "alpha"), scaling.as_list(b.law))),
                "intervals": {
                    k: [round(float(x), 6) for x in np.percentile(v, [tail, 100 - tail])]
                    for k, v in zip(("E", "A", "alpha"), spread[b.tokens])
                },
                "scatter": round(b.sigma, 6),
                "n_max": b.n_max,
                "refits": [scaling.as_list(x) for x in b.refits],
            }
            for b in budgets
        ],
        "interval": s.interval,
        "n": s.n,
        "n_why": N_WHY[s.n],
        "d": "tokens seen; every rung within one epoch of the train split (no repeats, so no term for them)",
        "method": {
            "objective": "Huber loss of log L_hat - log L, per budget",
            "huber_delta": s.huber_delta,
            "optimizer": "variable projection: alpha by a grid and a 1-D search, E and A by reweighted least squares",
            "interval": f"{s.bootstrap} parametric refits per budget x one run's scatter x the form's error "
            "per e-fold beyond the rungs (extrapolation.per_efold)",
        },
        "rungs": rows,
        "extrapolation": test,
        "holdout_max_abs_error": max((abs(r["error"]) for r in rows if r["held_out"]), default=None),
        "rung_flops": float(df["flops"].sum()),
        "frontier": frontier(budgets, fitted),
        "built_from": stamps.stamp(params, "fit"),
    }
    with atomic(paths.FIT, paths.FIT_FIGURE) as (tmp_json, tmp_png):
        plot(df, budgets, test, s.interval, test["per_efold"], s.n, tmp_png)
        write_json(tmp_json, result)
    return result


def main(args) -> None:
    r = run(load(args.params))
    for b in r["budgets"]:
        p = b["params"]
        log.info(
            "fit at %.3gM tokens: L = %.3f + %.3g / N^%.3f (scatter %.2f%%)",
            b["D"] / 1e6,
            p["E"],
            p["A"],
            p["alpha"],
            100 * b["scatter"],
        )
    x = r["extrapolation"]
    for name, along, f, e, inside in zip(x["left_out"], x["along"], x["factors"], x["errors"], x["inside_interval"]):
        log.info(
            "  extrapolation test, %s left out (x%g in %s): error %+.2f%% (%s the statistical interval)",
            name,
            f,
            along,
            100 * e,
            "inside" if inside else "outside",
        )
    for x in r["rungs"]:
        if x["held_out"]:
            log.info(
                "  held out %s: predicted %.4f [%.4f, %.4f], reached %.4f (%+.2f%%)",
                x["rung"],
                x["fitted"],
                *x["interval"],
                x["val_loss"],
                100 * x["error"],
            )
    print(f"wrote {paths.FIT} and {paths.FIT_FIGURE}")
