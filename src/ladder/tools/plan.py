"""`ladder plan [SIZES]`: parameters, FLOPs, memory and estimated hours per size, on this device and on
common GPUs (the estimates and their assumptions: core/cost.py)."""

from __future__ import annotations

import argparse

from ladder.core import config, cost


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sizes", nargs="*", help="sizes to plan (default: every size in params.yaml)")


def main(args) -> None:
    params = config.load(args.params)  # the sizes named are checked by the CLI
    print(cost.table(params, args.sizes or list(params.sizes)))
