"""Stage fit: what the cheap runs say the big ones will give. The scaling law fitted to the rungs.

Each rung (stage `rung`, `ladder train --rung NAME`) trains one shape x budget of params.yaml's
scaling: grid with the shipped recipe. This stage fits L(N, D) = E + A / N^alpha + B / D^beta to
their final val losses (core/scaling.py: Chinchilla's approach 3, bootstrap over rungs for
intervals) and writes results/scaling/fit.json and fit.png. The rungs in scaling.holdout are
trained but kept out of the fit: its predictions for them, against what they reached, say how far
to trust it. Predictions for the named sizes are stage `predict`, one per size, from this file only.

N is scaling.n: non-embedding by default (see N_WHY). D is the tokens a rung saw, repeats
included: a rung that reads its train split more than once counts every pass, and its epochs are
a column of its own rather than hidden.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ladder.core import paths, scaling, stamps
from ladder.core.config import RUNG, SHAPE, Params, load
from ladder.core.files import atomic, need, read_json, write_json
from ladder.core.progress import log, progress

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
        rows.append(dict(rung=name, shape=shape, width=width, depth=depth, N=n, params=s["params"], D=s["tokens"],
                         epochs=round(s["tokens"] / train_tokens, 3), flops=s["flops"], val_loss=s["final_val_loss"],
                         held_out=name in params.scaling.holdout))
    return pd.DataFrame(rows)


def frontier(law: scaling.Law, df: pd.DataFrame) -> list[dict]:
    """The compute-optimal N and D at FLOP budgets from the cheapest rung's to 10^4 times the costliest's
    (none when the fit trades nothing: an exponent at 0)."""
    if not law.has_optimum:
        return []
    lo, hi = np.log10(6 * df["N"] * df["D"]).min(), np.log10(6 * df["N"] * df["D"]).max() + 4
    out = []
    for c in 10 ** np.arange(np.floor(lo), np.ceil(hi) + 0.5, 0.5):
        n, d = law.optimal(c)
        out.append({"flops": float(c), "N": float(n), "D": float(d), "val_loss": round(float(law.loss(n, d)), 5)})
    return out


def plot(df: pd.DataFrame, law: scaling.Law, front: list[dict], n_kind: str, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.8))
    df = df.assign(tokens=df["D"].map(lambda d: f"{d / 1e6:.3g}M" if d < 1e9 else f"{d / 1e9:.3g}B"),
                   kind=df["held_out"].map({False: "fitted", True: "held out"}))
    hues = dict(zip(df["tokens"].unique(), sns.color_palette("viridis", df["tokens"].nunique())))
    grid = np.geomspace(df["N"].min() / 1.5, df["N"].max() * 3, 100)
    for tokens, by in df.groupby("tokens", sort=False):
        left.plot(grid, law.loss(grid, by["D"].iloc[0]), color=hues[tokens], lw=1.2)
    sns.scatterplot(data=df, x="N", y="val_loss", hue="tokens", palette=hues, style="kind",
                    markers={"fitted": "o", "held out": "X"}, s=70, ax=left)
    left.set(xscale="log", xlabel=f"N ({n_kind.replace('_', '-')} parameters)",
             ylabel="final val loss (nats/token)", title="rungs and the fitted law, one line per token budget")
    left.legend(fontsize=8)  # seaborn heads its two parts: tokens (seen) and kind

    n = np.geomspace(df["N"].min() / 3, df["N"].max() * 100, 120)
    d = np.geomspace(df["D"].min() / 3, df["D"].max() * 100, 120)
    nn, dd = np.meshgrid(n, d)
    levels = np.quantile(law.loss(nn, dd), np.linspace(0.03, 0.97, 12))
    cs = right.contour(nn, dd, law.loss(nn, dd), levels=np.unique(np.round(levels, 2)), cmap="viridis_r", linewidths=1)
    right.clabel(cs, fontsize=7, fmt="%.2f")
    f = pd.DataFrame(front, columns=["flops", "N", "D", "val_loss"])
    f = f[(f["N"] >= n[0]) & (f["N"] <= n[-1]) & (f["D"] >= d[0]) & (f["D"] <= d[-1])]
    right.plot(f["N"], f["D"], "k--", lw=1.2, label="compute-optimal (C = 6ND)" if len(f) else
               "no compute-optimal frontier: an exponent is 0")
    sns.scatterplot(data=df, x="N", y="D", style="kind", markers={"fitted": "o", "held out": "X"}, color="black",
                    s=50, ax=right, legend=False)
    right.set(xscale="log", yscale="log", xlabel="N", ylabel="D (tokens seen)", title="iso-loss lines of the fit")
    right.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"L(N, D) = {law.E:.3g} + {law.A:.3g} / N^{law.alpha:.3f} + {law.B:.3g} / D^{law.beta:.3f}", y=1.0)
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def run(params: Params) -> dict:
    s = params.scaling
    df = rungs(params)
    fitted = df[~df["held_out"]]
    law = scaling.fit(fitted["N"], fitted["D"], fitted["val_loss"], s.huber_delta)
    refits = scaling.bootstrap(fitted["N"], fitted["D"], fitted["val_loss"], law, s.bootstrap, s.huber_delta,
                               seed=0)
    laws = list(progress(s.bootstrap, desc="fit bootstrap", unit="refit", iterable=refits))
    tail = (1 - s.interval) / 2 * 100
    samples = np.array([scaling.as_list(x) for x in laws])
    bounds = np.percentile(samples, [tail, 100 - tail], axis=0)
    names = ["E", "A", "alpha", "B", "beta"]
    rows = []
    for r in df.to_dict("records"):
        predicted = float(law.loss(r["N"], r["D"]))
        lo, hi = scaling.interval(laws, r["N"], r["D"], s.interval)
        rows.append(r | {"fitted": round(predicted, 5), "interval": [round(lo, 5), round(hi, 5)],
                         "log_residual": round(float(np.log(r["val_loss"] / predicted)), 5),
                         "error": round(r["val_loss"] / predicted - 1, 5)})
    front = frontier(law, df)
    result = {
        "law": "L(N, D) = E + A / N^alpha + B / D^beta",
        "params": dict(zip(names, map(float, scaling.as_list(law)))),
        "intervals": {k: [float(lo), float(hi)] for k, lo, hi in zip(names, *bounds)},
        "interval": s.interval,
        "n": s.n,
        "n_why": N_WHY[s.n],
        "d": "tokens seen, repeats included (epochs: passes over the train split)",
        "method": {"objective": "Huber loss of log L_hat - log L", "huber_delta": s.huber_delta,
                   "optimizer": "L-BFGS-B from the best points of a grid (core/scaling.py)",
                   "bootstrap": f"{s.bootstrap} refits on the fitted rungs drawn with replacement"},
        "rungs": rows,
        "holdout_max_abs_error": max((abs(r["error"]) for r in rows if r["held_out"]), default=None),
        "rung_flops": float(df["flops"].sum()),
        "frontier": front,
        "bootstrap_laws": samples.tolist(),
        "built_from": stamps.stamp(params, "fit"),
    }
    with atomic(paths.FIT, paths.FIT_FIGURE) as (tmp_json, tmp_png):
        plot(df, law, front, s.n, tmp_png)
        write_json(tmp_json, result)
    return result


def main(args) -> None:
    r = run(load(args.params))
    p = r["params"]
    log.info("fit: L = %.3f + %.3g / N^%.3f + %.3g / D^%.3f over %d rungs (%s N)", p["E"], p["A"], p["alpha"], p["B"],
             p["beta"], sum(not x["held_out"] for x in r["rungs"]), r["n"].replace("_", "-"))
    for x in r["rungs"]:
        if x["held_out"]:
            log.info("  held out %s: predicted %.4f [%.4f, %.4f], reached %.4f (%+.2f%%)", x["rung"], x["fitted"],
                     *x["interval"], x["val_loss"], 100 * x["error"])
    print(f"wrote {paths.FIT} and {paths.FIT_FIGURE}")
