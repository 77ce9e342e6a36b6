"""titn-lite: a teaching kit for vision transformers and knowledge distillation (TITN)."""

from titn_lite.attention import MultiHeadAttention, scaled_dot_product_attention
from titn_lite.models import AttentionMaps, capture_attention, create_model, list_models
from titn_lite.teachers import create_teacher, list_teachers

__version__ = "0.1.0"

__all__ = [
    "AttentionMaps",
    "MultiHeadAttention",
    "capture_attention",
    "create_model",
    "create_teacher",
    "list_models",
    "list_teachers",
    "scaled_dot_product_attention",
]
