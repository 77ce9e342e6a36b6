import torch
from einops import rearrange

from titn_lite.models.blocks import Block, PixelEmbedding, PixelLayerNorm, PixelToPatch, TNTBlock


def test_pixel_rearrange_equals_unfold_of_each_patch():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 32, 32)
    embedding = PixelEmbedding(patch_size=8, pixel_size=2, in_chans=3, dim=12)
    pixels = embedding.to_pixels(images)  # (B * P, n, C * m * m)
    patches = rearrange(images, "b c (gh p1) (gw p2) -> (b gh gw) c p1 p2", p1=8, p2=8)
    unfolded = torch.nn.Unfold(kernel_size=2, stride=2)(patches).transpose(1, 2)
    torch.testing.assert_close(pixels, unfolded, rtol=0, atol=0)
    assert embedding(images).shape == (2 * 16, 16, 12)


def test_pixel_to_patch_rows_for_tokens_are_zero():
    torch.manual_seed(0)
    fold = PixelToPatch(num_pixels=16, pixel_dim=12, patch_dim=192, prefix_tokens=1, suffix_tokens=1)
    out = fold(torch.randn(2 * 16, 16, 12), batch_size=2)
    assert out.shape == (2, 18, 192)
    assert torch.all(out[:, 0] == 0) and torch.all(out[:, -1] == 0)
    assert torch.all(out[:, 1:-1].abs().sum(-1) > 0)


def test_tnt_block_pixels_never_reach_class_or_distill_rows_before_outer_attention():
    torch.manual_seed(0)
    block = TNTBlock(patch_dim=24, pixel_dim=12, num_pixels=4, outer_heads=2, inner_heads=4,
                     prefix_tokens=1, suffix_tokens=1)
    tokens = torch.randn(2, 6, 24)
    pixels = torch.randn(2 * 4, 4, 12, requires_grad=True)
    folded = tokens + block.pixel_to_patch(block.inner(pixels), batch_size=2)
    (grad,) = torch.autograd.grad(folded[:, [0, -1]].sum(), pixels, allow_unused=True, materialize_grads=True)
    assert torch.all(grad == 0)
    torch.testing.assert_close(folded[:, [0, -1]], tokens[:, [0, -1]], rtol=0, atol=0)
    new_pixels, new_tokens = block(pixels, tokens)
    assert new_pixels.shape == pixels.shape and new_tokens.shape == tokens.shape


def test_pixel_layer_norm_equals_layer_norm():
    torch.manual_seed(0)
    reference, split = torch.nn.LayerNorm(12), PixelLayerNorm(12)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5)
        reference.bias.uniform_(-1, 1)
    split.load_state_dict(reference.state_dict())
    x = torch.randn(64, 16, 12, requires_grad=True)
    torch.testing.assert_close(split(x), reference(x))
    g_split = torch.autograd.grad(split(x).pow(3).sum(), [x, split.weight, split.bias])
    g_ref = torch.autograd.grad(reference(x).pow(3).sum(), [x, reference.weight, reference.bias])
    for a, b in zip(g_split, g_ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_block_is_pre_norm_residual():
    torch.manual_seed(0)
    block = Block(dim=16, num_heads=4)
    x = torch.randn(2, 5, 16)
    after_attention = x + block.attn(block.norm1(x))
    expected = after_attention + block.mlp(block.norm2(after_attention))
    torch.testing.assert_close(block(x), expected)
