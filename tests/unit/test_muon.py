"""nn/muon.py against torch.optim.Muon, the rule it keeps; each test well under a second."""

import pytest
import torch

from ladder.nn.muon import Muon, orthogonalize

SHAPES = [(96, 32), (32, 32), (32, 128), (96, 32)]  # two of one shape: a stack of two
# on CUDA both sides iterate in bf16, and the shapes are GPT-2 small's (a stack of two 768 x 768)
GPU_SHAPES = [(768, 768), (3072, 768), (768, 3072), (768, 768)]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pair(decay: float = 0.2, device: str = "cpu"):
    torch.manual_seed(0)
    shapes = GPU_SHAPES if device == "cuda" else SHAPES
    ours = [torch.nn.Parameter(0.02 * torch.randn(*s, device=device)) for s in shapes]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    a = Muon([dict(params=ours, weight_decay=decay)], lr=0.01, momentum=0.95)
    b = torch.optim.Muon([dict(params=ref, weight_decay=decay)], lr=0.01, momentum=0.95, adjust_lr_fn="match_rms_adamw")
    return ours, ref, a, b


@pytest.mark.parametrize("device", DEVICES)
def test_same_rule_as_torch_muon_within_bf16_rounding(device):
    """Momentum, Nesterov, decoupled decay and the match_rms_adamw size: every step's update within
    3% of torch's (its iterations run in bf16, ours in float32 on a CPU and bf16 stacked on CUDA); a
    missing Nesterov term or a size off by sqrt(2) is 10x that."""
    ours, ref, a, b = pair(device=device)
    for _ in range(3):
        start = [p.detach().clone() for p in ours]
        for p, q in zip(ours, ref):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        a.step()
        b.step()
        for p, q, s in zip(ours, ref, start):
            mine, theirs = p.detach() - s, q.detach() - s
            assert ((mine - theirs).norm() / theirs.norm()).item() < 0.03, tuple(p.shape)
            q.data.copy_(p.data)  # the next step from the same weights


def test_stack_equals_one_at_a_time_and_lands_near_orthogonal():
    g = torch.randn(3, 48, 80)
    stacked = orthogonalize(g)
    for i in range(3):
        assert torch.equal(stacked[i], orthogonalize(g[i : i + 1])[0])
    for m in (stacked[0], orthogonalize(g.mT)[0]):  # wide and tall
        s = torch.linalg.svdvals(m)
        assert 0.6 < s.min().item() and s.max().item() < 1.25  # the quintic's band around 1


def test_checkpoint_interchanges_with_torch_muon():
    ours, ref, a, b = pair()
    for p, q in zip(ours, ref):
        p.grad = torch.randn_like(p)
        q.grad = p.grad.clone()
    b.step()
    a.load_state_dict(b.state_dict())
    for p, q in zip(ours, ref):
        assert torch.equal(a.state[p]["momentum_buffer"], b.state[q]["momentum_buffer"])


def test_refuses_what_is_not_a_matrix():
    with pytest.raises(ValueError, match="matrices"):
        Muon([torch.nn.Parameter(torch.ones(4))], lr=0.01, momentum=0.9)
