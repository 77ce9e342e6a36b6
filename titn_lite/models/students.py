"""The five students of Table 1: ViT, DeiT, TNT, TITN and TITN (large patch).

Two families share everything but how the image enters the outer sequence:

- ``VisionTransformer`` (ViT; DeiT when distilled): patch embedding -> pre-norm blocks.
- ``TransformerInTransformer`` (TNT; TITN when distilled): pixel embedding feeds inner
  blocks, whose output is folded into learned patch tokens at every block.

Both put a class token first and, when distilled, a distillation token last
(Algorithm 1), and read each through its own head. Distilled models return
``(class_logits, distill_logits)`` in training mode and their mean in eval mode, as DeiT's
released code does: the kit's choice, since the paper is inconsistent here (§3.2 names
one fully connected layer, eq. 10 gives each token its own loss, and Algorithm 1, lines
10-11, concatenates the two tokens' outputs into one prediction);
``titn_lite.results.paper.LEDGER`` lists it.

``MODEL_CONFIGS`` is Table 1 as data; ``create_model`` builds any row of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn

from titn_lite.models.attention import MultiHeadAttention, divisors, keeping_attention_weights
from titn_lite.models.blocks import Block, PatchEmbedding, PixelEmbedding, TNTBlock
from titn_lite.system.usage import UsageError, check_positive_int


@dataclass(frozen=True)
class ModelConfig:
    """One column of Table 1. ``pixel_*`` and ``inner_heads`` apply to the TNT family."""

    family: Literal["vit", "tnt"]
    patch_size: int = 8
    patch_dim: int = 192
    depth: int = 12
    outer_heads: int = 8
    mlp_ratio: float = 4.0
    distilled: bool = False
    pixel_size: int | None = None
    pixel_dim: int | None = None
    inner_heads: int | None = None


_TNT = dict(family="tnt", pixel_size=2, pixel_dim=12, inner_heads=4)

# Table 1 (image 32x32). Outer attention 8 heads x 24 dims, inner 4 heads x 3 dims.
MODEL_CONFIGS: dict[str, ModelConfig] = {
    "vit": ModelConfig(family="vit"),
    "deit": ModelConfig(family="vit", distilled=True),
    "tnt": ModelConfig(**_TNT),
    "titn": ModelConfig(**_TNT, distilled=True),
    "titn_large_patch": ModelConfig(**{**_TNT, "pixel_size": 4}, patch_size=16, distilled=True),
}


def list_models() -> list[str]:
    """Names ``create_model`` accepts, in Table 1's order."""
    return list(MODEL_CONFIGS)


def create_model(
    name: str, *, num_classes: int, img_size: int = 32, in_chans: int = 3, **overrides: object
) -> nn.Module:
    """Build a Table 1 student, optionally with some config fields overridden.

    >>> model = create_model("titn", num_classes=10, in_chans=1)
    >>> model = create_model("tnt", num_classes=10, depth=2, pixel_size=4)

    Raises ``ValueError`` (before any tensor is made) for an unknown name or override,
    or sizes that do not fit together.
    """
    config = model_config(name, **overrides)
    validate_config(config, num_classes=num_classes, img_size=img_size, in_chans=in_chans)
    family = VisionTransformer if config.family == "vit" else TransformerInTransformer
    return family(config, num_classes=num_classes, img_size=img_size, in_chans=in_chans)


def model_config(name: str, **overrides: object) -> ModelConfig:
    """Table 1's config for ``name`` with ``overrides`` applied (not yet validated)."""
    if name not in MODEL_CONFIGS:
        raise UsageError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    overridable = [f.name for f in dataclasses.fields(ModelConfig) if f.name != "family"]
    unknown = sorted(set(overrides) - set(overridable))
    if unknown:
        raise UsageError(
            f"unknown override(s) {unknown} for model {name!r}; valid overrides: "
            f"{', '.join(overridable)}"
        )
    return dataclasses.replace(MODEL_CONFIGS[name], **overrides)


def validate_config(config: ModelConfig, *, num_classes: int, img_size: int, in_chans: int) -> None:
    """Raise ``ValueError`` naming the values and what would be valid, if sizes clash."""
    for field, value in (("num_classes", num_classes), ("img_size", img_size),
                         ("in_chans", in_chans), ("depth", config.depth),
                         ("patch_size", config.patch_size)):
        check_positive_int(field, value)
    if img_size % config.patch_size:
        raise UsageError(
            f"image size {img_size} is not divisible by patch size {config.patch_size}; "
            f"valid patch sizes for {img_size}x{img_size} images: {divisors(img_size)}"
        )
    _check_heads("patch dim", config.patch_dim, "outer_heads", config.outer_heads)
    if config.family == "vit":
        tnt_only = {k: getattr(config, k) for k in ("pixel_size", "pixel_dim", "inner_heads")
                    if getattr(config, k) is not None}
        if tnt_only:
            raise UsageError(f"{tnt_only} only apply to the TNT family (tnt, titn, titn_large_patch)")
        return
    assert config.pixel_size and config.pixel_dim and config.inner_heads
    if config.patch_size % config.pixel_size:
        raise UsageError(
            f"patch size {config.patch_size} is not divisible by pixel size {config.pixel_size}; "
            f"valid pixel sizes for patch size {config.patch_size}: {divisors(config.patch_size)}"
        )
    _check_heads("pixel dim", config.pixel_dim, "inner_heads", config.inner_heads)


def _check_heads(what: str, dim: int, field: str, heads: int) -> None:
    if heads < 1 or dim % heads:
        raise UsageError(
            f"{what} {dim} is not divisible by {field}={heads}; valid {field} for {what} "
            f"{dim}: {divisors(dim)}"
        )


def mean_of_heads(outputs: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    """One prediction from a model's output: a distilled model's two heads averaged (what it
    returns in eval mode), anything else as it is."""
    return (outputs[0] + outputs[1]) / 2 if isinstance(outputs, tuple) else outputs


def check_images(images: Tensor, *, in_chans: int, img_size: int) -> None:
    """Raise ``ValueError`` unless ``images`` is (B, in_chans, img_size, img_size)."""
    expected = f"(batch, {in_chans}, {img_size}, {img_size})"
    if not isinstance(images, Tensor) or images.dim() != 4:
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise UsageError(f"expected a batch of images shaped {expected}, got {got}")
    _, chans, height, width = images.shape
    if chans != in_chans:
        raise UsageError(
            f"images have {chans} channel(s) but the model was built with in_chans={in_chans}; "
            f"expected {expected} (create the model with in_chans={chans} for these images)"
        )
    if (height, width) != (img_size, img_size):
        raise UsageError(
            f"images are {height}x{width} but the model was built with img_size={img_size}; "
            f"expected {expected} (resize the images, or create the model with that img_size)"
        )


class TokenSequence(nn.Module):
    """Assemble the outer sequence: [class token, P patch tokens, distillation token].

    (B, P, D) -> (B, T, D), T = P + 1 (+ 1 if distilled), with a learned positional
    embedding over all T positions added.
    """

    def __init__(self, dim: int, num_patches: int, distilled: bool) -> None:
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.distill_token = nn.Parameter(torch.zeros(1, 1, dim)) if distilled else None
        self.pos_embedding = nn.Parameter(torch.zeros(1, num_patches + 1 + distilled, dim))

    def forward(self, patches: Tensor) -> Tensor:
        batch = patches.shape[0]
        parts = [self.class_token.expand(batch, -1, -1), patches]
        if self.distill_token is not None:
            parts.append(self.distill_token.expand(batch, -1, -1))
        return torch.cat(parts, dim=1) + self.pos_embedding


class ClassifierHeads(nn.Module):
    """LayerNorm + Linear on the class token and, if distilled, on the distillation token.

    (B, T, D) -> (B, classes), or in training a pair of them when distilled.
    """

    def __init__(self, dim: int, num_classes: int, distilled: bool) -> None:
        super().__init__()
        self.class_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))
        self.distill_head = (
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes)) if distilled else None
        )

    def forward(self, tokens: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        class_logits = self.class_head(tokens[:, 0])
        if self.distill_head is None:
            return class_logits
        distill_logits = self.distill_head(tokens[:, -1])
        if self.training:
            return class_logits, distill_logits
        return mean_of_heads((class_logits, distill_logits))


class VisionTransformer(nn.Module):
    """ViT (Dosovitskiy et al.) and, with ``config.distilled``, DeiT (Touvron et al.).

    images (B, C, H, W) -> logits (B, classes); see the module docstring for DeiT.
    """

    def __init__(self, config: ModelConfig, *, num_classes: int, img_size: int, in_chans: int) -> None:
        super().__init__()
        self.config, self.num_classes, self.img_size, self.in_chans = config, num_classes, img_size, in_chans
        self.num_patches = (img_size // config.patch_size) ** 2
        self.patch_embedding = PatchEmbedding(config.patch_size, in_chans, config.patch_dim)
        self.tokens = TokenSequence(config.patch_dim, self.num_patches, config.distilled)
        self.blocks = nn.ModuleList(
            Block(config.patch_dim, config.outer_heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.heads = ClassifierHeads(config.patch_dim, num_classes, config.distilled)
        init_weights(self)

    def forward(self, images: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        check_images(images, in_chans=self.in_chans, img_size=self.img_size)
        x = self.tokens(self.patch_embedding(images))
        for block in self.blocks:
            x = block(x)
        return self.heads(x)

    def attention_modules(self) -> tuple[list[MultiHeadAttention], list[MultiHeadAttention]]:
        """(outer, inner) attention modules in block order; ViT has no inner ones."""
        return [block.attn for block in self.blocks], []

    def no_weight_decay(self) -> set[str]:
        """Parameters weight decay leaves alone besides the 1-D ones (timm's convention): the
        learned tokens and position embeddings."""
        return learned_token_names(self)


class TransformerInTransformer(nn.Module):
    """TNT (Han et al. 2021) and, with ``config.distilled``, TITN: the paper's model.

    images (B, C, H, W) -> logits (B, classes); see the module docstring for TITN.
    Patch tokens start as learned vectors (plus the positional embedding); the image
    reaches them only through each block's pixel-to-patch projection.
    """

    def __init__(self, config: ModelConfig, *, num_classes: int, img_size: int, in_chans: int) -> None:
        super().__init__()
        assert config.pixel_size and config.pixel_dim and config.inner_heads
        self.config, self.num_classes, self.img_size, self.in_chans = config, num_classes, img_size, in_chans
        self.num_patches = (img_size // config.patch_size) ** 2
        num_pixels = (config.patch_size // config.pixel_size) ** 2
        self.pixel_embedding = PixelEmbedding(config.patch_size, config.pixel_size, in_chans, config.pixel_dim)
        self.patch_tokens = nn.Parameter(torch.zeros(1, self.num_patches, config.patch_dim))
        self.tokens = TokenSequence(config.patch_dim, self.num_patches, config.distilled)
        self.blocks = nn.ModuleList(
            TNTBlock(
                config.patch_dim, config.pixel_dim, num_pixels, config.outer_heads,
                config.inner_heads, config.mlp_ratio, prefix_tokens=1, suffix_tokens=int(config.distilled),
            )
            for _ in range(config.depth)
        )
        self.heads = ClassifierHeads(config.patch_dim, num_classes, config.distilled)
        init_weights(self)

    def forward(self, images: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        check_images(images, in_chans=self.in_chans, img_size=self.img_size)
        pixels = self.pixel_embedding(images)
        x = self.tokens(self.patch_tokens.expand(images.shape[0], -1, -1))
        for block in self.blocks:
            pixels, x = block(pixels, x)
        return self.heads(x)

    def attention_modules(self) -> tuple[list[MultiHeadAttention], list[MultiHeadAttention]]:
        """(outer, inner) attention modules in block order."""
        return [block.outer.attn for block in self.blocks], [block.inner.attn for block in self.blocks]

    def no_weight_decay(self) -> set[str]:
        """Parameters weight decay leaves alone besides the 1-D ones (timm's convention): the
        learned tokens and position embeddings."""
        return learned_token_names(self)


# Learned tokens and position embeddings: vectors that stand for a slot or a position, not
# feature detectors. They start small (``init_weights``) and do not decay (``no_weight_decay``).
LEARNED_TOKENS = ("token", "tokens", "pos_embedding")


def learned_token_names(model: nn.Module) -> set[str]:
    """Names of ``model``'s learned tokens and position embeddings."""
    return {name for name, _ in model.named_parameters() if name.endswith(LEARNED_TOKENS)}


def init_weights(model: nn.Module) -> None:
    """ViT's initialisation: truncated normal (std 0.02) for Linear weights and learned
    tokens/embeddings, zero biases. Large random tokens would swamp the image signal."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
    tokens = learned_token_names(model)
    for name, param in model.named_parameters():
        if name in tokens:
            nn.init.trunc_normal_(param, std=0.02)


@dataclass
class AttentionMaps:
    """Attention weights of every block for one batch; each row sums to 1.

    outer: per block, (B, heads, T, T) over [class, patches..., distill].
    inner: per block, (B, P, inner_heads, n, n) over the pixels of each patch
        (empty for ViT/DeiT).
    """

    outer: list[Tensor]
    inner: list[Tensor]


def capture_attention(model: nn.Module, images: Tensor) -> tuple[Tensor | tuple[Tensor, Tensor], AttentionMaps]:
    """Run ``model`` on ``images`` and return its outputs and every block's attention.

    The outputs equal a plain ``model(images)`` (the written-out attention agrees with
    the fused kernel to float rounding, ~1e-6).
    """
    outer_modules, inner_modules = model.attention_modules()
    with keeping_attention_weights(model):
        outputs = model(images)
    inner = [rearrange(m.last_weights, "(b p) h i j -> b p h i j", p=model.num_patches)
             for m in inner_modules]
    return outputs, AttentionMaps(outer=[m.last_weights for m in outer_modules], inner=inner)
