"""The models, in the order the notebooks build them: attention (01), the blocks (02, 03),
the five students of Table 1 (02, 04), the CNN teachers (06), and ``build_model``, any of
them by name."""

from titn_lite.models.attention import MultiHeadAttention, scaled_dot_product_attention
from titn_lite.models.registry import build_model
from titn_lite.models.students import AttentionMaps, capture_attention, create_model, list_models
from titn_lite.models.teachers import create_teacher, list_teachers

__all__ = [
    "AttentionMaps",
    "MultiHeadAttention",
    "build_model",
    "capture_attention",
    "create_model",
    "create_teacher",
    "list_models",
    "list_teachers",
    "scaled_dot_product_attention",
]
