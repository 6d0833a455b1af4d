"""The fused lm_head + cross-entropy (kernels.py) against the plain path.

On a machine without a GPU the fused op takes its torch step, and the Triton kernel runs under
Triton's interpreter (numpy on the CPU) against that step, so CI checks both: loss, both
gradients, ignored targets, uneven chunks. bf16 autocast and the compiled model need a CUDA GPU.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

if not torch.cuda.is_available():  # must be set before kernels.py decorates its kernel
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton")

from ladder.nn import kernels  # noqa: E402
from ladder.nn.model import GPT, GPTConfig  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
needs_gpu = pytest.mark.skipif(DEVICE.type != "cuda", reason="needs a CUDA GPU (bf16 autocast, compiled model)")


def plain_and_fused(x, w, targets, autocast: bool):
    out = []
    for fused in (False, True):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=autocast):
            if fused:
                loss = kernels.linear_cross_entropy(xi, wi, targets)
            else:
                logits = F.linear(xi, wi)
                loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        (3 * loss).backward()  # a gradient other than 1 reaches backward, as with accumulation
        out.append((loss.detach().float(), xi.grad, wi.grad))
    return out


@pytest.mark.parametrize("V", [1000, 50304])  # within one block of the kernel's loop, and across 13
def test_fused_loss_matches_plain_fp32_across_chunks(monkeypatch, request, V):
    T = 1000 if DEVICE.type == "cuda" else 50  # the interpreter takes ~30 ms per row at V=50304
    for chunk in ("GPU_CHUNK", "CPU_CHUNK"):
        monkeypatch.setattr(kernels, chunk, 48 * V)  # 48 rows a chunk: several, the last one shorter
    if DEVICE.type == "cuda":  # full float32 matmuls, whatever an earlier test set
        was = torch.get_float32_matmul_precision()
        request.addfinalizer(lambda: torch.set_float32_matmul_precision(was))
        torch.set_float32_matmul_precision("highest")
    g = torch.Generator(device=DEVICE).manual_seed(0)
    x = torch.randn(3, T, 64, device=DEVICE, generator=g)
    w = torch.randn(V, 64, device=DEVICE, generator=g) * 0.2
    targets = torch.randint(0, V, (3, T), device=DEVICE, generator=g)
    targets[0, :10] = -1  # ignored positions count neither in the loss nor in the mean
    (lp, xp, wp), (lf, xf, wf) = plain_and_fused(x, w, targets, autocast=False)
    torch.testing.assert_close(lf, lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xf, xp, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(wf, wp, rtol=1e-4, atol=1e-6)
    assert xf[0, :10].abs().max() == 0


@pytest.mark.parametrize("V", [1000, 5000])  # within one block of the kernel's loop, and across 2
def test_triton_kernel_and_torch_step_agree(V):
    """The chunk step the fused op takes on a GPU (Triton) and elsewhere (torch), on the same logits."""
    g = torch.Generator(device=DEVICE).manual_seed(2)
    logits = torch.randn(40, V, device=DEVICE, generator=g) * 3
    targets = torch.randint(0, V, (40,), device=DEVICE, generator=g)
    targets[:5] = -1
    inv_n = torch.tensor([1 / 35], device=DEVICE)
    out = []
    for step in ("triton", "torch"):
        grad, rows = logits.clone(), torch.empty(40, device=DEVICE)
        if step == "triton":
            kernels._loss_and_grad[(40,)](grad, targets, rows, inv_n, V, BLOCK=kernels.BLOCK)
        else:
            kernels._torch_loss_and_grad(grad, targets, rows, inv_n)
        out.append((rows, grad))
    (rt, gt), (rc, gc) = out
    torch.testing.assert_close(rt, rc, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gt, gc, rtol=1e-4, atol=1e-7)
    assert rc[:5].abs().max() == 0 and gc[:5].abs().max() == 0


@needs_gpu
def test_fused_loss_matches_plain_under_bf16_autocast():
    g = torch.Generator(device=DEVICE).manual_seed(1)
    x = torch.randn(4, 512, 128, device=DEVICE, generator=g)
    w = torch.randn(8192, 128, device=DEVICE, generator=g) * 0.1
    targets = torch.randint(0, 8192, (4, 512), device=DEVICE, generator=g)
    (lp, xp, wp), (lf, xf, wf) = plain_and_fused(x, w, targets, autocast=True)
    assert xf.dtype == xp.dtype and wf.dtype == wp.dtype == torch.float32
    torch.testing.assert_close(lf, lp, rtol=2e-3, atol=2e-3)
    for a, b in ((xf, xp), (wf, wp)):
        assert (a - b).norm() / b.norm() < 2e-2


@needs_gpu
def test_compiled_model_trains_the_same_with_the_fused_loss():
    """A few compiled bf16 AdamW steps of a small GPT: same losses either way, up to bf16 noise."""
    curves = []
    for fused in (False, True):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=4096, block_size=128, n_layer=2, n_head=4, n_embd=128, tie_weights=True)).to(
            DEVICE
        )
        model.fused_loss = fused
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=True)
        fwd = torch.compile(model)
        g = torch.Generator(device=DEVICE).manual_seed(2)
        x = torch.randint(0, 4096, (8, 128), device=DEVICE, generator=g)
        losses = []
        for _ in range(6):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits, loss = fwd(x, torch.roll(x, -1, dims=1))
            assert (logits is None) == fused
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
        curves.append(losses)
    plain, fused = curves
    assert fused[-1] < fused[0] - 0.5  # it learns
    assert max(abs(a - b) for a, b in zip(plain, fused)) < 0.05, (plain, fused)
