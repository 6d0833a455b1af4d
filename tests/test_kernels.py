"""The fused lm_head + cross-entropy (kernels.py) against the plain path. Needs a CUDA GPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ladder.model import GPT, GPTConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (Triton kernel)")
CUDA = torch.device("cuda")


def plain_and_fused(x, w, targets, autocast: bool):
    from ladder.kernels import linear_cross_entropy

    out = []
    for fused in (False, True):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            if fused:
                loss = linear_cross_entropy(xi, wi, targets)
            else:
                logits = F.linear(xi, wi)
                loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        (3 * loss).backward()  # a gradient other than 1 reaches backward, as with accumulation
        out.append((loss.detach().float(), xi.grad, wi.grad))
    return out


@pytest.mark.parametrize("V", [1000, 50304])
def test_fused_loss_matches_plain_fp32_across_chunks(monkeypatch, V):
    import ladder.kernels

    monkeypatch.setattr(ladder.kernels, "CHUNK_ELEMENTS", 700 * V)  # several chunks, the last one short
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    g = torch.Generator(device=CUDA).manual_seed(0)
    x = torch.randn(3, 1000, 64, device=CUDA, generator=g)
    w = torch.randn(V, 64, device=CUDA, generator=g) * 0.2
    targets = torch.randint(0, V, (3, 1000), device=CUDA, generator=g)
    targets[0, :100] = -1  # ignored positions count neither in the loss nor in the mean
    (lp, xp, wp), (lf, xf, wf) = plain_and_fused(x, w, targets, autocast=False)
    torch.testing.assert_close(lf, lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xf, xp, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(wf, wp, rtol=1e-4, atol=1e-6)
    assert xf[0, :100].abs().max() == 0


def test_fused_loss_matches_plain_under_bf16_autocast():
    g = torch.Generator(device=CUDA).manual_seed(1)
    x = torch.randn(4, 512, 128, device=CUDA, generator=g)
    w = torch.randn(8192, 128, device=CUDA, generator=g) * 0.1
    targets = torch.randint(0, 8192, (4, 512), device=CUDA, generator=g)
    (lp, xp, wp), (lf, xf, wf) = plain_and_fused(x, w, targets, autocast=True)
    assert xf.dtype == xp.dtype and wf.dtype == wp.dtype == torch.float32
    torch.testing.assert_close(lf, lp, rtol=2e-3, atol=2e-3)
    for a, b in ((xf, xp), (wf, wp)):
        assert (a - b).norm() / b.norm() < 2e-2


def test_compiled_model_trains_the_same_with_the_fused_loss():
    """A few compiled bf16 AdamW steps of a small GPT: same losses either way, up to bf16 noise."""
    curves = []
    for fused in (False, True):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=4096, block_size=128, n_layer=2, n_head=4, n_embd=128,
                              tie_weights=True)).to(CUDA)
        model.fused_loss = fused
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=True)
        fwd = torch.compile(model)
        g = torch.Generator(device=CUDA).manual_seed(2)
        x = torch.randint(0, 4096, (8, 128), device=CUDA, generator=g)
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
