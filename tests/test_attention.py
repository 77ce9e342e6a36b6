import math

import pytest
import torch
import torch.nn.functional as F

from titn_lite.models.attention import MultiHeadAttention, keeping_attention_weights, scaled_dot_product_attention


def test_written_out_attention_equals_torch_sdpa():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 7, 5).unbind(0)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 7))


def test_scores_are_scaled_by_sqrt_of_key_dim():
    # One query, two keys: with d_k = 4 the logit gap of 4 becomes 2 after scaling.
    q = torch.tensor([[[2.0, 0.0, 0.0, 0.0]]])
    k = torch.tensor([[[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    v = torch.eye(2).unsqueeze(0)
    _, weights = scaled_dot_product_attention(q, k, v)
    expected = torch.softmax(torch.tensor([4.0, 0.0]) / math.sqrt(4), dim=0)
    torch.testing.assert_close(weights[0, 0], expected)


def test_mask_blocks_keys_and_matches_torch():
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 1, 2, 6, 4).unbind(0)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    out, weights = scaled_dot_product_attention(q, k, v, mask=causal)
    assert torch.all(weights[..., ~causal] == 0)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=causal), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dim,heads,tokens", [(192, 8, 18), (12, 4, 16)])
def test_fused_and_written_out_paths_agree(dim, heads, tokens):
    torch.manual_seed(2)
    attention = MultiHeadAttention(dim, heads)
    x = torch.randn(3, tokens, dim, requires_grad=True)
    fused = attention(x)
    (fused_grad,) = torch.autograd.grad(fused.square().sum(), x)
    attention.keep_weights = True
    written = attention(x)
    (written_grad,) = torch.autograd.grad(written.square().sum(), x)
    torch.testing.assert_close(written, fused, atol=1e-5, rtol=0)
    torch.testing.assert_close(written_grad, fused_grad, atol=1e-5, rtol=1e-4)
    assert attention.last_weights.shape == (3, heads, tokens, tokens)


def test_keeping_weights_is_scoped():
    model = torch.nn.Sequential(MultiHeadAttention(8, 2), MultiHeadAttention(8, 4))
    with keeping_attention_weights(model) as modules:
        model(torch.randn(1, 3, 8))
        assert [m.last_weights.shape[1] for m in modules] == [2, 4]
    assert not any(m.keep_weights for m in modules)


def test_heads_must_divide_dim():
    with pytest.raises(ValueError, match=r"192 is not divisible by num_heads=5.*\[1, 2, 3, 4, 6, 8"):
        MultiHeadAttention(192, 5)
