"""The coordinate check (Tensor Programs V, section D.1): does training change activations by
the same amount at every width, and (CompleteP) at every depth?

Train a few Adam steps at several widths (or depths), with the same data, seed and LR, and
record the RMS of each layer's output.  Under μP the curves over width are flat; under the
standard parametrisation they grow with width, the updates driving it (Adam moves every weight
by ~lr, so a width-n dot product moves by ~lr * n).  Over depth, each block adds its update to the
residual stream, so without a depth rule the change of the last block's output and of the logits
grows with the number of blocks; CompleteP's 1/m_L branch multiplier keeps it flat.
Two quantities per layer and step:

* ``rms``: RMS of the activation at step t (what the plot shows by default);
* ``delta_rms``: RMS of (activation at step t - activation at step 0), i.e.
  what training did.  It isolates the update scaling, so the tests assert on it.

Usage: ``ladder coord-check --out coordcheck.png`` (widths) or ``--depths 2 4 8 16`` (also writes a
CSV next to it). The optimizer is the train stage's (nn/recipe.py), with params.yaml's settings.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ladder.nn import recipe
from ladder.nn.model import GPT, GPTConfig
from ladder.pipeline import options
from ladder.pipeline.config import Train, load
from ladder.pipeline.files import atomic, is_png, user_target

WIDTHS = (64, 128, 256, 512)
LAYERS = ["embedding", "first block", "last block", "logits"]


def label(rule: bool, axis: str) -> str:
    return "SP" if not rule else "μP" if axis == "width" else "μP + CompleteP"


def measure(
    train: Train,
    widths=WIDTHS,
    steps: int = 6,
    mup: bool = True,
    lr: float = 3e-3,
    n_layer: int = 2,
    n_head: int = 4,
    vocab_size: int = 256,
    seq_len: int = 32,
    batch_size: int = 8,
    base_width: int = 128,
    seed: int = 0,
    depths=None,
    width: int = 128,
) -> list[dict]:
    """Return one record per (shape, step, layer): {param, width, depth, step, layer, rms, delta_rms}.

    Over `widths` at depth n_layer, or, given `depths`, over those at `width` (base depth: the
    first of them). `mup` turns on the transfer rule of the axis: μP, plus CompleteP over depth.
    Step t holds activations after t optimizer steps (t = 0..steps), on the one fixed batch that is
    also trained on, through the train stage's recipe with `train`'s optimizer settings (weight decay
    and clipping off: they would blur the update scaling the check is about).
    """
    train = train.model_copy(update={"weight_decay": 0.0, "grad_clip": 0.0})
    shapes = [(w, n_layer) for w in widths] if depths is None else [(width, d) for d in depths]
    axis = "width" if depths is None else "depth"
    # Adam's early steps can push some SP activations into denormal range, which is ~50x slower on
    # CPU; and these models are so small that extra threads only fight over a busy CI machine.
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(seed)
        data = torch.randint(0, vocab_size, (batch_size, seq_len + 1), generator=g)  # one fixed batch
        return [
            r
            for w, d in shapes
            for r in _train_and_record(
                train,
                GPTConfig(
                    vocab_size=vocab_size,
                    block_size=seq_len,
                    n_layer=d,
                    n_head=n_head,
                    n_embd=w,
                    mup=mup,
                    mup_base_width=base_width,
                    completep=mup and axis == "depth",
                    mup_base_depth=shapes[0][1],
                ),
                data[:, :-1],
                data[:, 1:],
                steps,
                lr,
                seed,
                label(mup, axis),
            )
        ]
    finally:
        torch.set_flush_denormal(False)  # the default
        torch.set_num_threads(threads)


def _train_and_record(train, cfg, x, y, steps, lr, seed, param):
    torch.manual_seed(seed)
    model = GPT(cfg)
    model.fused_loss = False  # the check records lm_head's output, which the fused loss never forms
    cpu = torch.device("cpu")
    opts = recipe.optimizer(model, lr, train, cpu)
    scaler = torch.amp.GradScaler("cpu", enabled=False)

    modules = [model.embed_tokens, model.layers[0], model.layers[-1], model.lm_head]
    current: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, n=n: current.__setitem__(n, out.detach()))
        for n, m in zip(LAYERS, modules)
    ]
    records, first = [], {}
    for step in range(steps + 1):
        if step < steps:  # the forward of the step records the activations before its update
            loss, _ = recipe.step(model, model, opts, scaler, [(x, y)], 1, train, cpu, "fp32")
        else:
            with torch.no_grad():
                _, loss = model(x, y)
        if step == 0:
            first = dict(current)
        for n in LAYERS:
            records.append(
                dict(
                    param=param,
                    width=cfg.n_embd,
                    depth=cfg.n_layer,
                    step=step,
                    layer=n,
                    rms=current[n].pow(2).mean().sqrt().item(),
                    delta_rms=(current[n] - first[n]).pow(2).mean().sqrt().item(),
                    loss=loss.item(),
                )
            )
    for h in hooks:
        h.remove()
    return records


def slope(records: list[dict], param: str, layer: str, step: int, key: str = "delta_rms", axis: str = "width") -> float:
    """Least-squares slope of log2(key) against log2(width or depth): 0 = flat, 1 = grows like it."""
    pts = [
        (math.log2(r[axis]), math.log2(r[key]))
        for r in records
        if r["param"] == param and r["layer"] == layer and r["step"] == step
    ]
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((a - mx) * (b - my) for a, b in pts) / sum((a - mx) ** 2 for a, _ in pts)


def plot(records: list[dict], out_png: Path, metric: str = "rms", note: str = "", axis: str = "width") -> None:
    """Grid: one row per layer, SP | μP side by side, width (or depth) on a log2 axis, one line per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullLocator

    df = pd.DataFrame(records)
    df = df[df["step"] > 0] if metric == "delta_rms" else df  # step 0 has no change yet
    label = {"rms": "activation RMS", "delta_rms": "RMS of change since init"}[metric]
    sns.set_theme(style="whitegrid", context="notebook")
    n_steps = df["step"].nunique()
    grid = sns.relplot(
        data=df,
        x=axis,
        y=metric,
        hue="step",
        row="layer",
        col="param",
        col_order=list(dict.fromkeys(df["param"])),
        kind="line",
        marker="o",
        palette=sns.color_palette("viridis", n_steps),
        height=2.3,
        aspect=1.6,
        facet_kws=dict(sharey="row", margin_titles=True),
    )
    values = sorted(df[axis].unique())
    for ax in grid.axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [str(v) for v in values])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_yscale("log")
    for row in grid.axes:  # rows share y; label ticks readably whether a row spans 10% or 100x
        lo, hi = row[0].get_ylim()
        row[0].yaxis.set_major_locator(MaxNLocator(4) if hi / lo < 4 else LogLocator(10, subs=(1, 2, 5)))
        row[0].yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        row[0].yaxis.set_minor_locator(NullLocator())
    grid.set_axis_labels("width (n_embd)" if axis == "width" else "depth (n_layer)", label)
    grid.set_titles(row_template="{row_name}", col_template="{col_name}")
    title = f"Coordinate check: {label} after t optimizer steps (flat = {axis}-independent)"
    grid.figure.suptitle(title + (f"\n{note}" if note else ""), y=1.05)
    with atomic(out_png) as (tmp,):
        grid.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(grid.figure)


def run(
    train: Train, out_png: Path, widths=WIDTHS, steps: int = 6, mup: bool | None = None, metric: str = "rms", **kw
) -> list[dict]:
    """Measure (both parametrisations unless mup says which), plot to out_png, CSV beside it."""
    params = [False, True] if mup is None else [mup]
    records = [r for m in params for r in measure(train, widths=widths, steps=steps, mup=m, **kw)]
    note = ", ".join(f"{k}={v}" for k, v in kw.items() if v is not None)
    plot(records, out_png, metric=metric, note=note, axis="width" if kw.get("depths") is None else "depth")
    import pandas as pd

    with atomic(Path(out_png).with_suffix(".csv")) as (tmp,):
        pd.DataFrame(records).to_csv(tmp, index=False)
    return records


def earlier_csv(path: Path) -> bool:
    """A table this command wrote (by its header)."""
    try:
        with open(path) as f:
            return f.readline().startswith("param,width,step,layer,")
    except (OSError, UnicodeDecodeError):
        return False


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--out", type=Path, default=Path("results/coordcheck.png"), help="figure (CSV beside it; default: %(default)s)"
    )
    ap.add_argument(
        "--widths",
        type=options.integer(1),
        nargs="+",
        default=list(WIDTHS),
        help="n_embd values (default: %(default)s)",
    )
    ap.add_argument("--steps", type=options.integer(1), default=6, help="Adam steps per width (default: %(default)s)")
    ap.add_argument("--lr", type=options.real(above=0), default=3e-3, help="base learning rate (default: %(default)s)")
    ap.add_argument("--n-layer", type=options.integer(1), default=2, help="blocks, over widths (default: %(default)s)")
    ap.add_argument(
        "--depths",
        type=int,
        nargs="+",
        default=None,
        help="check over these n_layer values instead of widths, the first as CompleteP's base depth",
    )
    ap.add_argument("--width", type=options.integer(1), default=128, help="n_embd, over depths (default: %(default)s)")
    ap.add_argument("--n-head", type=options.integer(1), default=4, help="heads at every width (default: %(default)s)")
    ap.add_argument("--base-width", type=options.integer(1), default=128, help="μP base width (default: %(default)s)")
    ap.add_argument("--seed", type=options.seed, default=0, help="init and data seed (default: %(default)s)")
    ap.add_argument(
        "--metric",
        choices=["rms", "delta_rms"],
        default="rms",
        help="plot the activation RMS or its change since init (default: %(default)s)",
    )
    ap.add_argument(
        "--only",
        choices=["sp", "mup"],
        default=None,
        help="one parametrisation instead of both (mup: μP, and CompleteP over depths)",
    )


def main(a: argparse.Namespace) -> None:
    mup = None if a.only is None else a.only == "mup"
    user_target(a.out, is_png, "figure")
    user_target(a.out.with_suffix(".csv"), earlier_csv, "table beside the figure")
    records = run(
        load(a.params).train,
        a.out,
        widths=a.widths,
        steps=a.steps,
        mup=mup,
        metric=a.metric,
        lr=a.lr,
        n_layer=a.n_layer,
        n_head=a.n_head,
        base_width=a.base_width,
        seed=a.seed,
        depths=a.depths,
        width=a.width,
    )
    axis = "width" if a.depths is None else "depth"
    print(f"slope of log2(delta RMS) vs log2({axis}) at step {a.steps} (0 = flat, 1 = grows like {axis}):")
    for p in dict.fromkeys(r["param"] for r in records):
        print(f"  {p:14s} " + "  ".join(f"{n}: {slope(records, p, n, a.steps, axis=axis):+.2f}" for n in LAYERS))
    print(f"wrote {a.out} and {a.out.with_suffix('.csv')}")
