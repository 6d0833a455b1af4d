"""lm_head and cross-entropy in one pass, for training on CUDA.

Why: at GPT-2 shapes the logits are the largest tensor of a step (32 x 1024 x 50304 bf16 = 3.3 GB
at micro-batch 32) and the plain path streams them through memory four times (the matmul writes
them, the loss reads them, its backward reads them again and writes their gradient). Here the
rows go through in chunks: for each chunk, a cuBLAS matmul writes its logits, one Triton kernel
takes the loss and overwrites the logits with their gradient (softmax - one-hot, over the number
of targets), and two more matmuls turn that into the gradients of the input and of the weight.
The gradients are ready when the forward ends; backward only scales them by the incoming gradient
(1/accumulation steps, or the fp16 loss scale). Same FLOPs, one pass over the logits fewer, and
a chunk of logits in memory instead of all of them.

Only used by GPT.forward when training on CUDA with targets; everything else takes the plain
path (model.py), which is also the reference the GPU test compares against.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

CHUNK_ELEMENTS = 1 << 29  # logits per chunk at most: 1 GB in bf16
BLOCK = 4096  # vocabulary entries a program handles per loop iteration


@triton.jit
def _loss_and_grad(logits_ptr, targets_ptr, loss_ptr, inv_n_ptr, V, BLOCK: tl.constexpr):
    """One program per row: loss = logsumexp - logit[target]; logits := (softmax - onehot) / n."""
    row = tl.program_id(0).to(tl.int64)
    base = logits_ptr + row * V
    target = tl.load(targets_ptr + row)
    # pass 1: running max and sum of exponentials per lane, combined at the end
    m = tl.full([BLOCK], -1e30, tl.float32)
    s = tl.zeros([BLOCK], tl.float32)
    for start in range(0, V, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        x = tl.load(base + cols, mask=cols < V, other=0.0).to(tl.float32)
        x = tl.where(cols < V, x, -1e30)
        m_new = tl.maximum(m, x)
        s = s * tl.exp(m - m_new) + tl.exp(x - m_new)
        m = m_new
    top = tl.max(m, 0)
    lse = top + tl.log(tl.sum(s * tl.exp(m - top), 0))
    valid = target >= 0
    picked = tl.load(base + tl.where(valid, target, 0)).to(tl.float32)
    tl.store(loss_ptr + row, tl.where(valid, lse - picked, 0.0))
    # pass 2 (the row is still in L2): the gradient of the mean loss, written over the logits
    scale = tl.where(valid, tl.load(inv_n_ptr), 0.0)
    for start in range(0, V, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        x = tl.load(base + cols, mask=cols < V, other=0.0).to(tl.float32)
        g = (tl.exp(x - lse) - tl.where(cols == target, 1.0, 0.0)) * scale
        tl.store(base + cols, g.to(logits_ptr.dtype.element_ty), mask=cols < V)


@torch.library.custom_op("ladder::linear_cross_entropy", mutates_args=())
def _linear_cross_entropy(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (N, C), weight (V, C), targets (N,) with -1 = ignore -> (mean loss, d loss/dx, d loss/dweight)."""
    N, V = x.size(0), weight.size(0)
    w = weight.to(x.dtype)
    n = (targets >= 0).sum().clamp(min=1)
    inv_n = (1.0 / n.float()).reshape(1)
    rows = torch.empty(N, dtype=torch.float32, device=x.device)
    dx = torch.empty_like(x)
    dw = None
    chunks = math.ceil(N * V / CHUNK_ELEMENTS)
    chunk = math.ceil(N / chunks)  # equal chunks: the matmuls like even shapes
    for a in range(0, N, chunk):
        xc = x[a : a + chunk]
        logits = xc @ w.t()  # (n, V), becomes the gradient below
        _loss_and_grad[(xc.size(0),)](
            logits, targets[a : a + chunk], rows[a : a + chunk], inv_n, V, BLOCK=BLOCK, num_warps=8
        )
        dx[a : a + chunk] = logits @ w
        part = (logits.t() @ xc).float()
        dw = part if dw is None else dw.add_(part)
    return rows.sum() * inv_n[0], dx, dw.to(weight.dtype)


@_linear_cross_entropy.register_fake
def _(x, weight, targets):
    return x.new_empty((), dtype=torch.float32), torch.empty_like(x), torch.empty_like(weight)


def _setup(ctx, inputs, output):
    ctx.save_for_backward(output[1], output[2])


def _backward(ctx, grad_loss, _grad_dx, _grad_dw):
    dx, dw = ctx.saved_tensors
    return dx * grad_loss.to(dx.dtype), dw * grad_loss.to(dw.dtype), None


_linear_cross_entropy.register_autograd(_backward, setup_context=_setup)


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (x @ weight.T) against targets (-1 ignored); x (B, T, C), targets (B, T).
    Under autocast the matmuls run in the autocast dtype, as nn.Linear's would."""
    if torch.is_autocast_enabled("cuda"):
        x = x.to(torch.get_autocast_dtype("cuda"))
    with torch.autocast("cuda", enabled=False):
        return _linear_cross_entropy(x.flatten(0, 1).contiguous(), weight, targets.flatten().contiguous())[0]
