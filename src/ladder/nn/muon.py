"""Muon for the hidden matrices: Nesterov momentum, then the update orthogonalised by Newton–Schulz.

The rule is torch.optim.Muon's (Jordan et al. 2024; its coefficients, its decoupled weight decay and
its "match_rms_adamw" size, 0.2 sqrt(max(fan_out, fan_in)), so `lr` means what it meant with AdamW),
with two changes to where the arithmetic runs:
- matrices of one shape are stacked and orthogonalised together, one batched matmul per iteration
  instead of one per matrix, and decayed and updated by one foreach call per shape;
- the iterations run in bf16 on CUDA and float32 elsewhere. A CPU without bf16 matrix units emulates
  bf16 matmuls: on 2 cores of an AMD EPYC torch's bf16 iterations took 845 ms a step for tiny's
  matrices, float32 45 ms.
Checkpoints interchange with torch.optim.Muon's: the state is one `momentum_buffer` per matrix.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # Jordan's quintic: fast to ~1 near zero, not exactly 1


def orthogonalize(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Newton–Schulz on a stack of matrices (k, m, n): each pushed towards U V^T of its SVD."""
    a, b, c = NS_COEFFICIENTS
    x = g.to(torch.bfloat16 if g.is_cuda else torch.float32)
    wide = x.size(-2) <= x.size(-1)
    if not wide:
        x = x.mT  # iterate on the (m, m) Gram matrix of the shorter side
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # spectral norm <= 1
    for _ in range(steps):
        gram = x @ x.mT
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.baddbmm(x, poly, x, beta=a)
    return x if wide else x.mT


class Muon(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float, weight_decay: float = 0.1, ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, ns_steps=ns_steps))
        for group in self.param_groups:
            if any(p.dim() != 2 for p in group["params"]):
                raise ValueError("Muon takes matrices only")

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            bufs = [self.state[p].setdefault("momentum_buffer", torch.zeros_like(p)) for p in params]
            torch._foreach_lerp_(bufs, grads, 1 - group["momentum"])
            updates = torch._foreach_lerp(grads, bufs, group["momentum"])  # Nesterov
            lr, decay = group["lr"], group["weight_decay"]
            by_shape = defaultdict(list)
            for i, p in enumerate(params):
                by_shape[p.shape].append(i)
            for shape, idx in by_shape.items():
                ortho = orthogonalize(torch.stack([updates[i] for i in idx]), group["ns_steps"])
                mats = [params[i] for i in idx]
                torch._foreach_mul_(mats, 1 - lr * decay)
                torch._foreach_add_(mats, ortho.to(mats[0].dtype).unbind(), alpha=-lr * 0.2 * math.sqrt(max(shape)))
