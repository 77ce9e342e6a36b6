"""Scaled dot-product attention and multi-head self-attention (paper §3.1.1, eq. 1-3).

Notebook 01 builds these from scratch. The written-out ``scaled_dot_product_attention``
is the lesson; ``MultiHeadAttention`` runs on PyTorch's fused
``F.scaled_dot_product_attention`` for speed and switches to the written-out path only
when it is asked to keep its attention weights (for pictures), since the fused kernel
never materialises them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from titn_lite.system.usage import UsageError


def scaled_dot_product_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T / sqrt(d_k)) V, written out (eq. 1).

    Args:
        query: (..., N_q, d_k).
        key: (..., N_k, d_k).
        value: (..., N_k, d_v).
        mask: optional boolean (..., N_q, N_k), broadcastable; True where a query may
            attend to a key (the convention of ``F.scaled_dot_product_attention``).

    Returns:
        output (..., N_q, d_v) and the attention weights (..., N_q, N_k), rows summing to 1.
    """
    # Dividing by sqrt(d_k) keeps the logits' variance near 1 whatever the head size,
    # so the softmax does not saturate into a one-hot with vanishing gradients.
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ value, weights


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention: Concat(head_1..head_h) W^O (eq. 2-3).

    Input and output (B, N, dim). Q, K and V come from one Linear(dim, 3 * dim) and are
    split into ``num_heads`` heads of ``dim // num_heads`` features each.

    Set ``keep_weights = True`` (or use :func:`keeping_attention_weights`) and the module
    runs the written-out path and leaves its attention weights, (B, heads, N, N), in
    ``last_weights``. Both paths compute the same function.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise UsageError(
                f"embedding dim {dim} is not divisible by num_heads={num_heads}; "
                f"valid head counts for dim {dim}: {divisors(dim)}"
            )
        self.num_heads = num_heads
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.to_out = nn.Linear(dim, dim)
        self.keep_weights = False
        self.last_weights: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, N, dim) -> (B, N, dim)."""
        q, k, v = rearrange(
            self.to_qkv(x), "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.num_heads
        )
        if self.keep_weights:
            out, weights = scaled_dot_product_attention(q, k, v)
            self.last_weights = weights.detach()
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


@contextmanager
def keeping_attention_weights(model: nn.Module) -> Iterator[list[MultiHeadAttention]]:
    """Within the block, every attention module of ``model`` keeps its weights.

    Yields the modules in the order they run; restores the fast path on exit.
    """
    modules = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    for module in modules:
        module.keep_weights = True
        module.last_weights = None
    try:
        yield modules
    finally:
        for module in modules:
            module.keep_weights = False


def divisors(n: int) -> list[int]:
    """The whole numbers that divide ``n``: what an error message offers as valid sizes."""
    return [d for d in range(1, n + 1) if n % d == 0]


def attention_rollout(layers: list[Tensor]) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much each token's final state draws
    on each input token, through every layer and its residual connection.

    Each layer's weights (B, heads, T, T) are averaged over heads, mixed half and half
    with the identity (the residual path), and the layers' matrices multiplied in order.
    Returns (B, T, T) with rows summing to 1.
    """
    if not layers:
        raise UsageError("attention rollout needs at least one layer of attention weights")
    rollout = None
    for weights in layers:
        if weights.dim() != 4 or weights.shape[-1] != weights.shape[-2]:
            raise UsageError(f"expected attention weights shaped (B, heads, T, T), got {tuple(weights.shape)}")
        averaged = weights.mean(dim=1)
        identity = torch.eye(averaged.shape[-1], dtype=averaged.dtype, device=averaged.device)
        with_residual = 0.5 * averaged + 0.5 * identity
        rollout = with_residual if rollout is None else with_residual @ rollout
    return rollout
