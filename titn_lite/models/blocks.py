"""Transformer building blocks: the pre-norm block (ViT, DeiT) and the TNT inner/outer
block (TNT, TITN), in the order notebooks 02 and 03 teach them.

Shapes use B = batch, P = patches per image, T = tokens in the outer sequence
(P patches plus the class and distillation tokens), n = pixels per patch,
D = patch (outer) dim, d = pixel (inner) dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from einops.layers.torch import Rearrange
from torch import Tensor, nn

from titn_lite.models.attention import MultiHeadAttention


class Mlp(nn.Module):
    """FC -> GELU -> FC (eq. 4-5). (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class PixelLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over pixel tokens: the same parameters and values, computed as
    normalise-then-affine.

    Why: on the CPU, the fused LayerNorm backward reduces the weight and bias gradients
    slowly when there are many short rows (B * P * n = 16k rows of 12 features per batch
    of 64 here); the split form makes a whole TNT training step ~5% faster. For the
    192-dim patch tokens the fused kernel is faster, so those keep ``nn.LayerNorm``.
    """

    def forward(self, x: Tensor) -> Tensor:
        normalised = F.layer_norm(x, self.normalized_shape, None, None, self.eps)
        return torch.addcmul(self.bias, normalised, self.weight)


class Block(nn.Module):
    """Pre-norm transformer block: x + MHSA(LN(x)), then x + MLP(LN(x)).

    (B, N, dim) -> (B, N, dim). The same block serves as the outer block over patch
    tokens and the inner block over the pixels of each patch (with ``PixelLayerNorm``).
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
        norm_layer: type[nn.LayerNorm] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = MultiHeadAttention(dim, num_heads)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbedding(nn.Module):
    """Cut the image into p x p patches and project each to the patch dim (ViT).

    (B, C, H, W) -> (B, P, D) with P = (H / p) * (W / p), patches in row-major order.
    """

    def __init__(self, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.to_patches = Rearrange(
            "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=patch_size, p2=patch_size
        )
        self.proj = nn.Linear(in_chans * patch_size * patch_size, dim)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(self.to_patches(images))


class PixelEmbedding(nn.Module):
    """Cut every patch into m x m pixels and project each pixel to the pixel dim (TNT).

    (B, C, H, W) -> (B * P, n, d) with n = (p / m)^2. The rearrange is ``nn.Unfold``
    with stride = kernel = m applied to each patch (same values, same (c, m, m) order),
    without materialising the patches first. A learned pixel positional embedding,
    shared by all patches, says where in its patch each pixel lies.
    """

    def __init__(self, patch_size: int, pixel_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        pixels_per_side = patch_size // pixel_size
        self.to_pixels = Rearrange(
            "b c (gh ph m1) (gw pw m2) -> (b gh gw) (ph pw) (c m1 m2)",
            ph=pixels_per_side, pw=pixels_per_side, m1=pixel_size, m2=pixel_size,
        )
        self.proj = nn.Linear(in_chans * pixel_size * pixel_size, dim)
        self.pos_embedding = nn.Parameter(torch.zeros(pixels_per_side**2, dim))

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(self.to_pixels(images)) + self.pos_embedding


class PixelToPatch(nn.Module):
    """Fold each patch's pixel tokens into one patch-dim vector (TNT's patch residual).

    (B * P, n, d) -> (B, T, D): LayerNorm over d, flatten the n pixels, Linear to D, then
    zero rows for the tokens that have no pixels (``prefix_tokens`` class token at the
    front, ``suffix_tokens`` distillation token at the back) so the result can be added
    to the whole outer sequence.
    """

    def __init__(
        self, num_pixels: int, pixel_dim: int, patch_dim: int,
        prefix_tokens: int = 1, suffix_tokens: int = 0,
    ) -> None:
        super().__init__()
        self.norm = PixelLayerNorm(pixel_dim)
        self.proj = nn.Linear(num_pixels * pixel_dim, patch_dim)
        self.prefix_tokens = prefix_tokens
        self.suffix_tokens = suffix_tokens

    def forward(self, pixels: Tensor, batch_size: int) -> Tensor:
        per_patch = rearrange(self.norm(pixels), "(b p) n d -> b p (n d)", b=batch_size)
        return F.pad(self.proj(per_patch), (0, 0, self.prefix_tokens, self.suffix_tokens))


class TNTBlock(nn.Module):
    """One TNT / TITN block: inner block over pixels, pixel-to-patch, outer block.

    pixels (B * P, n, d), tokens (B, T, D) -> the same shapes. All patches go through the
    inner block at once as one batch of B * P short sequences with shared weights.
    """

    def __init__(
        self, patch_dim: int, pixel_dim: int, num_pixels: int,
        outer_heads: int, inner_heads: int, mlp_ratio: float = 4.0,
        prefix_tokens: int = 1, suffix_tokens: int = 0,
    ) -> None:
        super().__init__()
        self.inner = Block(pixel_dim, inner_heads, mlp_ratio, norm_layer=PixelLayerNorm)
        self.pixel_to_patch = PixelToPatch(
            num_pixels, pixel_dim, patch_dim, prefix_tokens, suffix_tokens
        )
        self.outer = Block(patch_dim, outer_heads, mlp_ratio)

    def forward(self, pixels: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        pixels = self.inner(pixels)
        tokens = tokens + self.pixel_to_patch(pixels, batch_size=tokens.shape[0])
        return pixels, self.outer(tokens)

