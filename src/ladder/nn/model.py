"""A decoder-only transformer in the Llama layout, small enough to read in one sitting.

Why the Llama layout: every convention here (module names, RoPE with the
``rotate_half`` pairing, RMSNorm eps 1e-6, SwiGLU gate/up/down, no biases)
matches Hugging Face ``LlamaForCausalLM``, so a checkpoint exports with a
plain key rename: prefix every key with ``model.`` except ``lm_head.weight``
(``hf_config`` / ``hf_state_dict``, which also fold the μP and CompleteP multipliers in).

Three parametrisations share one code path:

* standard (SP, ``mup=False``): every matrix N(0, init_std), the two residual
  projections (o_proj, down_proj) scaled by 1/sqrt(2 * n_layer),
  attention scale 1/sqrt(head_dim);
* μP (Tensor Programs V, for Adam; ``mup=True``) with width multiplier
  m = n_embd / mup_base_width.  Hidden matrices: init std init_std/sqrt(m)
  and Adam LR x 1/m.  Embedding, norms, lm_head: init and LR unchanged.
  Output multiplier 1/m on the logits (lm_head keeps the small N(0, init_std)
  init; zero init would also be μP but would break "equals SP at base width").
  Attention scale c/head_dim with c = sqrt(base head_dim).  At m = 1 every
  one of these is exactly the standard parametrisation.  Tied embeddings are
  supported under μP: the shared matrix is "vector-like" in both roles (one
  dimension is the vocabulary), so its Adam LR is unscaled either way, and the
  1/m readout multiplier lives in the forward, not in the weight (as in the
  mup package's MuSharedReadout).
* CompleteP (``completep=True``, arXiv 2505.01618, alpha = 1), the depth rule
  on top of either: with depth multiplier m_L = n_layer / mup_base_depth every
  residual branch is scaled by 1/m_L, so each of the L blocks moves the stream
  by O(1/L) and their sum stays O(1) at any depth.  The residual projections
  keep the base depth's init 1/sqrt(2 * mup_base_depth) (the multiplier does
  the depth scaling now).  The optimizer side (recipe.py): LR unchanged in
  depth, Adam eps x 1/(m_N m_L).  At m_L = 1 this is exactly the model without it.

Shapes: B batch, T time, C = n_embd, nh = n_head, hd = head_dim, V = vocab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


@dataclass
class GPTConfig:
    # the shape has no defaults: a size's comes from params.yaml (nn/recipe.py) or its config.json
    vocab_size: int
    block_size: int  # longest context; sizes the RoPE tables
    n_layer: int
    n_head: int
    n_embd: int
    mlp_hidden: int = 0  # 0 = multiple of 64 nearest 8/3 * n_embd (see ffn_hidden)
    rope_theta: float = 10000.0
    tie_weights: bool = False
    mup: bool = False
    mup_base_width: int = 128
    # head_dim of the μP base model; 0 = mup_base_width // n_head, i.e. widening
    # grows head_dim at fixed n_head.  If your width sweep keeps head_dim fixed
    # and grows n_head instead, set this to that head_dim.
    mup_base_head_dim: int = 0
    completep: bool = False
    mup_base_depth: int = 4  # n_layer of the base model (CompleteP)
    init_std: float = 0.02
    checkpoint_activations: bool = False
    # Under bf16 autocast the residual stream is bf16 (half the bytes through every norm and add,
    # as in Megatron-LM and modded-nanogpt); True keeps it in float32.  fp16 always keeps float32:
    # its range is too narrow for a sum over the depth.
    fp32_residual: bool = False

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even for RoPE")
        if self.mup and self.mup_base_head_dim == 0 and self.mup_base_width % self.n_head:
            raise ValueError(
                f"μP: mup_base_width={self.mup_base_width} is not divisible by n_head={self.n_head}; "
                "set mup_base_head_dim to the head_dim of the μP base model"
            )

    # Derived values are properties, not fields, so dataclasses.replace(cfg, n_embd=...)
    # re-derives them and config.json only holds what the user chose.
    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def ffn_hidden(self) -> int:
        """SwiGLU hidden size: 3 matrices of C x ffn_hidden cost about what GPT-2's 2 of C x 4C do."""
        return self.mlp_hidden or max(64, 64 * round(8 * self.n_embd / 3 / 64))

    @property
    def width_mult(self) -> float:
        """μP width multiplier m (1.0 under SP)."""
        return self.n_embd / self.mup_base_width if self.mup else 1.0

    @property
    def depth_mult(self) -> float:
        """CompleteP depth multiplier m_L (1.0 without the depth rule)."""
        return self.n_layer / self.mup_base_depth if self.completep else 1.0

    @property
    def attn_scale(self) -> float:
        if not self.mup:
            return 1.0 / math.sqrt(self.head_dim)
        base_hd = self.mup_base_head_dim or self.mup_base_width // self.n_head
        return math.sqrt(base_hd) / self.head_dim  # = 1/sqrt(hd) at base width


# ----------------------------------------------------------------------------- building blocks


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # computed in float32 whatever x is; the output keeps x's dtype, so a bf16 stream stays bf16
        return F.rms_norm(x.float(), (x.size(-1),), self.weight, self.eps).to(x.dtype)


def rope_tables(head_dim: int, max_len: int, theta: float):
    """cos/sin tables (max_len, hd) in the HF Llama layout.

    Frequencies are computed in float32 exactly as HF does, so exported models
    reproduce our logits.  Both halves of hd share the frequencies because the
    rotation pairs dimension i with i + hd/2 (rotate_half), not 2i with 2i+1.
    """
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim)
    freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # (T, hd/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, hd)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):
    # x: (..., hd); cos, sin broadcast to it (T on x's time axis).  Cast the tables, not x, so bf16 stays bf16.
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class KVCache:
    """Keys/values of the tokens seen so far, one (B, nh, max_len, hd) buffer per layer.

    The buffers are allocated on the first write, so they take the batch size,
    device and dtype (bf16 under autocast) of the keys actually produced.
    Keys are stored after RoPE, at their absolute positions.
    """

    def __init__(self, n_layer: int, max_len: int):
        self.max_len = max_len
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer

    def update(self, layer: int, k, v, pos: int):
        """Write k, v (B, nh, T, hd) at positions pos..pos+T-1; return everything up to pos+T."""
        B, nh, T, hd = k.shape
        if pos + T > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions, asked for {pos + T}")
        if self.k[layer] is None:
            self.k[layer] = k.new_zeros(B, nh, self.max_len, hd)
            self.v[layer] = v.new_zeros(B, nh, self.max_len, hd)
        self.k[layer][:, :, pos : pos + T] = k
        self.v[layer][:, :, pos : pos + T] = v
        return self.k[layer][:, :, : pos + T], self.v[layer][:, :, : pos + T]


class Attention(nn.Module):
    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        C = config.n_embd
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.scale = config.attn_scale
        self.layer_idx = layer_idx  # which KVCache slot is ours
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, C, bias=False)
        self.v_proj = nn.Linear(C, C, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)

    def project(self, x, cos, sin):
        """q, k, v (B, nh, T, hd) for x (B, T, C), q and k rotated by RoPE (cos, sin: (T, hd))."""
        B, T, C = x.shape
        heads = (B, T, self.n_head, self.head_dim)
        # Rotate in the (B, T, nh, hd) layout the projections write, then view as (B, nh, T, hd),
        # so RoPE's reads and writes run through memory in order, forward and backward.
        cos, sin = cos[:, None], sin[:, None]  # (T, 1, hd)
        q = apply_rope(self.q_proj(x).view(heads), cos, sin)
        k = apply_rope(self.k_proj(x).view(heads), cos, sin)
        v = self.v_proj(x).view(heads)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x, cos, sin, cache: KVCache | None = None, pos: int = 0):
        B, T, C = x.shape
        q, k, v = self.project(x, cos, sin)  # (B, nh, T, hd)
        if cache is None:  # training / full forward: flash attention on CUDA
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        else:
            k, v = cache.update(self.layer_idx, k, v, pos)  # (B, nh, pos+T, hd)
            if T == 1:  # one new query may look at every cached key
                y = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
            elif pos == 0:  # prefill: plain causal
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
            else:  # chunk after a prefix; is_causal would align the mask top-left, so spell it out
                mask = torch.ones(T, pos + T, dtype=torch.bool, device=x.device).tril(diagonal=pos)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble heads
        return self.o_proj(y)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        C, H = config.n_embd, config.ffn_hidden
        self.gate_proj = nn.Linear(C, H, bias=False)
        self.up_proj = nn.Linear(C, H, bias=False)
        self.down_proj = nn.Linear(H, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """Pre-norm residual block; attribute names are HF Llama's."""

    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.n_embd)
        self.self_attn = Attention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.n_embd)
        self.mlp = MLP(config)
        self.branch_scale = 1.0 / config.depth_mult  # CompleteP: 1/m_L on each residual branch

    def forward(self, x, cos, sin, cache=None, pos=0):
        x = x + self.branch_scale * self.self_attn(self.input_layernorm(x), cos, sin, cache, pos)
        x = x + self.branch_scale * self.mlp(self.post_attention_layernorm(x))
        return x


# ----------------------------------------------------------------------------- the model


class GPT(nn.Module):
    fused_loss = True  # train through kernels.linear_cross_entropy (False: the plain path)

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        # Under torch.device("meta") (counting, checking shapes) there are no values to compute, and
        # computing on meta loads torch's compiler, seconds a process: no init (nn.Embedding's own too),
        # no RoPE tables.
        shapes_only = torch.empty(0).device.type == "meta"
        empty = torch.empty(config.vocab_size, config.n_embd) if shapes_only else None
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd, _weight=empty)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.embed_tokens.weight
        # Not persistent: recomputed from the config, and kept out of checkpoints / HF exports.
        if shapes_only:
            cos = sin = torch.empty(config.block_size, config.head_dim)
        else:
            cos, sin = rope_tables(config.head_dim, config.block_size, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        if not shapes_only:
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """SP or μP init (module docstring).  Same RNG draw order for both, so at
        base width a given seed yields bit-identical weights either way."""
        cfg = self.config
        std = cfg.init_std
        hidden = std / math.sqrt(cfg.width_mult)  # = std under SP (width_mult is 1)
        # residual projections: keep the sum over depth O(1) (under CompleteP the branch multiplier does it)
        resid = hidden / math.sqrt(2 * (cfg.mup_base_depth if cfg.completep else cfg.n_layer))
        nn.init.normal_(self.embed_tokens.weight, 0.0, std)
        for block in self.layers:
            a, m = block.self_attn, block.mlp
            for lin in (a.q_proj, a.k_proj, a.v_proj, m.gate_proj, m.up_proj):
                nn.init.normal_(lin.weight, 0.0, hidden)
            for lin in (a.o_proj, m.down_proj):
                nn.init.normal_(lin.weight, 0.0, resid)
            nn.init.ones_(block.input_layernorm.weight)
            nn.init.ones_(block.post_attention_layernorm.weight)
        nn.init.ones_(self.norm.weight)
        if not cfg.tie_weights:
            nn.init.normal_(self.lm_head.weight, 0.0, std)

    def forward(self, idx, targets=None, cache: KVCache | None = None, pos: int = 0):
        """idx (B, T) token ids at positions pos..pos+T-1 -> (logits (B, T, V), loss or None).

        With targets (B, T): loss is the mean cross-entropy, ignoring -1.  The
        logits returned are the tensor the loss was computed from (bf16 under
        autocast); nothing else is materialised.  Training (targets given,
        gradients on, `fused_loss`) returns no logits: the loss comes from the
        fused lm_head + cross-entropy of kernels.py.
        """
        B, T = idx.shape
        if pos + T > self.config.block_size:
            raise ValueError(f"positions up to {pos + T} exceed block_size={self.config.block_size}")
        cos, sin = self.rope_cos[pos : pos + T], self.rope_sin[pos : pos + T]  # (T, hd)
        x = self.embed_tokens(idx)  # (B, T, C)
        if self.bf16_residual(idx.device.type):
            x = x.to(torch.bfloat16)
        ckpt = self.config.checkpoint_activations and cache is None and torch.is_grad_enabled()
        for block in self.layers:
            if ckpt:  # keep only block inputs; recompute the insides during backward
                x = checkpoint(block, x, cos, sin, use_reentrant=False)
            else:
                x = block(x, cos, sin, cache, pos)
        x = self.norm(x)
        if self.config.mup and self.config.width_mult != 1.0:
            # μP output multiplier 1/m, applied to the C-wide input of lm_head
            # rather than the V-wide logits: same function, V/C times fewer flops.
            x = x * (1.0 / self.config.width_mult)
        if targets is not None and self.fused_loss and torch.is_grad_enabled():
            # training: lm_head and the loss in one pass, no logits kept (kernels.py)
            from ladder.nn.kernels import linear_cross_entropy

            return None, linear_cross_entropy(x, self.lm_head.weight, targets)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def bf16_residual(self, device_type: str) -> bool:
        """Whether the residual stream runs in bf16: under bf16 autocast, unless config.fp32_residual."""
        return (
            not self.config.fp32_residual
            and torch.is_autocast_enabled(device_type)
            and torch.get_autocast_dtype(device_type) == torch.bfloat16
        )

    # ------------------------------------------------------------------------- training helpers

    def param_groups(self, weight_decay: float, optimizer: str = "adamw") -> list[dict]:
        """Optimizer groups; the trainer sets group["lr"] = base_lr * group["lr_scale"].

        * "hidden": the matrices inside the blocks, the ones Muon takes (all 2-D). Weight
          decay; μP LR x 1/m for AdamW (an entrywise update: its spectral norm grows with width),
          x 1/sqrt(m) for Muon (an orthogonal update, sized 0.2 sqrt(max(fan_out, fan_in)) by
          torch's match_rms_adamw: the spectral condition wants it flat in width). Under μP the
          decay is divided by the LR scale, so the shrink per step, lr x decay, is the base
          model's at every width ("independent" weight decay).
        * "lm_head" (untied only): weight decay, LR x 1 (μP: the 1/m lives in the forward).
        * "no_decay": embedding table and all RMSNorm weights. No weight decay: a
          lookup table row only gets gradient when its token appears, so decay
          would shrink rare tokens towards zero, and decaying a norm gain pulls
          it towards 0 instead of its natural 1.  LR x 1.
        With tied weights the shared matrix is the embedding: no decay.  Under CompleteP no LR
        depends on depth (alpha = 1).
        """
        m = self.config.width_mult
        hidden_scale = 1.0 / (math.sqrt(m) if optimizer == "muon" else m)
        hidden = [p for p in self.layers.parameters() if p.dim() == 2]
        norms = [p for p in self.parameters() if p.dim() == 1]
        groups = [
            dict(name="hidden", params=hidden, weight_decay=weight_decay / hidden_scale, lr_scale=hidden_scale),
            dict(
                name="lm_head",
                params=[] if self.config.tie_weights else [self.lm_head.weight],
                weight_decay=weight_decay,
                lr_scale=1.0,
            ),
            dict(name="no_decay", params=[self.embed_tokens.weight] + norms, weight_decay=0.0, lr_scale=1.0),
        ]
        return [g for g in groups if g["params"]]

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count, a tied matrix counted once.

        non_embedding=True drops the token embedding table (Kaplan et al.'s N):
        untied, lm_head stays in; tied, the shared matrix is dropped.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.embed_tokens.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token (forward + backward), PaLM appendix B: 6N + 12*L*H*Q*T.

        N here = weights that take part in a matmul for every token: all block
        matrices plus lm_head, counted once whether tied or not (the lookup and
        the norm gains cost ~nothing).  For GPT-2-small shapes this N is ~124M,
        the number nanoGPT's MFU uses, so MFU figures compare.  12*L*H*Q*T is
        attention scores and values with the causal half counted too (convention).
        """
        T = seq_len or self.config.block_size
        cfg = self.config
        n_matmul = sum(p.numel() for p in self.layers.parameters() if p.dim() == 2) + self.lm_head.weight.numel()
        return 6 * n_matmul + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * T

    # ------------------------------------------------------------------------- Hugging Face export

    def hf_config(self) -> dict:
        """Keyword arguments for transformers.LlamaConfig; use with hf_state_dict()."""
        c = self.config
        return dict(
            vocab_size=c.vocab_size,
            hidden_size=c.n_embd,
            intermediate_size=c.ffn_hidden,
            num_hidden_layers=c.n_layer,
            num_attention_heads=c.n_head,
            num_key_value_heads=c.n_head,
            head_dim=c.head_dim,
            max_position_embeddings=c.block_size,
            rms_norm_eps=1e-6,
            rope_theta=c.rope_theta,
            hidden_act="silu",
            attention_bias=False,
            mlp_bias=False,
            # a μP output multiplier is folded into lm_head, which then differs from the embedding
            tie_word_embeddings=c.tie_weights and c.width_mult == 1.0,
        )

    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights under HF LlamaForCausalLM's names, μP multipliers folded in.

        HF Llama has attention scale 1/sqrt(hd), no logit multiplier and no branch
        multiplier, so for μP: q_proj *= attn_scale * sqrt(hd) (RoPE is linear, so
        scaling q before or after it is the same) and lm_head /= m; for CompleteP
        o_proj and down_proj *= 1/m_L (each branch ends in one of them).  SP weights
        pass through unchanged.
        """
        c = self.config
        q_fold, out_fold, branch_fold = c.attn_scale * math.sqrt(c.head_dim), 1.0 / c.width_mult, 1.0 / c.depth_mult
        sd = {}
        for k, v in self.state_dict().items():
            if k.endswith("self_attn.q_proj.weight") and q_fold != 1.0:
                v = v * q_fold
            if k.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")) and branch_fold != 1.0:
                v = v * branch_fold
            if k == "lm_head.weight" and out_fold != 1.0:
                v = v * out_fold
            sd[k if k.startswith("lm_head.") else "model." + k] = v
        return sd

    # ------------------------------------------------------------------------- generation

    @torch.no_grad()
    def generate(
        self,
        idx,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ):
        """Yield max_new_tokens new tokens, each (B, 1), so a caller can stream them.

        temperature 0 = greedy.  The cached and uncached paths compute the same
        logits.  Past block_size the window slides; RoPE positions then shift,
        so the cache is refilled from the last block_size tokens at every step
        (as slow as no cache, but still exactly the uncached result).
        """
        bs = self.config.block_size
        cache = KVCache(self.config.n_layer, min(bs, idx.size(1) + max_new_tokens)) if use_cache else None
        inp, pos = idx[:, -bs:], 0  # what the cache has not seen yet, and where it starts
        for _ in range(max_new_tokens):
            if cache is None:
                logits, _ = self(idx[:, -bs:])
            else:
                if pos + inp.size(1) > cache.max_len:
                    inp, pos = idx[:, -bs:], 0
                logits, _ = self(inp, cache=cache, pos=pos)
                pos += inp.size(1)
            nxt = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
            idx = torch.cat((idx, nxt), dim=1)
            inp = nxt
            yield nxt


def sample_next(
    logits,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
):
    """logits (B, V) -> token ids (B, 1)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token once the mass strictly before it already reaches top_p (the top token always stays)
        drop = probs.cumsum(dim=-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.empty_like(logits).scatter_(-1, order, sorted_logits)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)
