"""lm_head and cross-entropy in one pass, for training.

Why: the logits are the largest tensor of a step (32 x 1024 x 50304 bf16 = 3.3 GB at GPT-2 small's
micro-batch 32) and the plain path streams them through memory four times (the matmul writes them,
the loss reads them, its backward reads them again and writes their gradient). Here the rows go
through in chunks: for each chunk a matmul writes its logits, one step takes the loss and
overwrites the logits with their gradient (softmax - one-hot, over the number of targets), and two
more matmuls turn that into the gradients of the input and of the weight. The gradients are ready
when the forward ends; backward only scales them by the incoming gradient (1/accumulation steps, or
the fp16 loss scale). Same FLOPs, one pass over the logits fewer, and a chunk of logits in memory
instead of all of them.

That step is one Triton kernel on CUDA and a few in-place torch ops elsewhere. On a CPU the chunk
stays in cache: for tiny's 16 x 256 tokens and 4096-token vocabulary the head and loss take 155 ms
a step instead of 290 (2 cores), and the gradients agree with the plain path to float32 rounding.

Used by GPT.forward when training with targets; evaluation and generation take the plain path
(model.py), which is also the reference the tests compare against.
"""

from __future__ import annotations

import math

import torch

try:  # CUDA builds of torch bring Triton; a CPU-only install may lack it and never needs it
    import triton
    import triton.language as tl
except ImportError:
    triton = None

GPU_CHUNK = 1 << 29  # logits per chunk at most: 1 GB in bf16
CPU_CHUNK = 1 << 20  # 4 MB in float32: a CPU's chunk should stay in cache
BLOCK = 4096  # vocabulary entries a Triton program handles per loop iteration


def _torch_loss_and_grad(logits, targets, rows, inv_n) -> None:
    """What the Triton kernel does, in torch ops on the chunk in place."""
    valid = targets >= 0
    picked = logits.gather(1, targets.clamp(min=0)[:, None])[:, 0]
    lse = torch.logsumexp(logits, dim=-1)
    rows.copy_(torch.where(valid, lse - picked, 0.0))
    logits.sub_(lse[:, None]).exp_()
    logits.scatter_add_(1, targets.clamp(min=0)[:, None], -torch.ones_like(lse[:, None]))
    logits.mul_(torch.where(valid, inv_n, 0.0)[:, None])


if triton is not None:

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
    chunks = math.ceil(N * V / (GPU_CHUNK if x.is_cuda else CPU_CHUNK))
    chunk = math.ceil(N / chunks)  # equal chunks: the matmuls like even shapes
    for a in range(0, N, chunk):
        xc = x[a : a + chunk]
        logits = xc @ w.t()  # (n, V), becomes the gradient below
        if x.is_cuda:
            _loss_and_grad[(xc.size(0),)](
                logits, targets[a : a + chunk], rows[a : a + chunk], inv_n, V, BLOCK=BLOCK, num_warps=8
            )
        else:
            _torch_loss_and_grad(logits, targets[a : a + chunk], rows[a : a + chunk], inv_n)
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
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        x = x.to(torch.get_autocast_dtype(kind))
    with torch.autocast(kind, enabled=False):
        return _linear_cross_entropy(x.flatten(0, 1).contiguous(), weight, targets.flatten().contiguous())[0]
