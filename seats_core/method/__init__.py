"""The SEATS method: pure torch functions, no model code (spec §1-§3, §5).

Stage I selection (selection), Stage II budget (budget) and relevance (scores), and the retention schedule
that ties the stages to a layer-averaged R (schedule).
"""

from .budget import allocate_budget, allocate_budget_detailed
from .importance import windowed_received_attention
from .schedule import (
    ENCODER_SCALE,
    PRESETS,
    PRESETS_QWEN3,
    default_drop_layers,
    fastv_keep_ratio,
    layer_levels,
    parse_retention,
    retention_schedule,
    round_half_up,
)
from .scores import last_token_relevance
from .selection import (
    diversity_select,
    pool_pairs,
    random_select,
    received_attention,
    select_per_window,
    visionzip_select,
    window_keep_count,
)

__all__ = [
    "ENCODER_SCALE",
    "PRESETS",
    "PRESETS_QWEN3",
    "allocate_budget",
    "allocate_budget_detailed",
    "default_drop_layers",
    "diversity_select",
    "fastv_keep_ratio",
    "last_token_relevance",
    "layer_levels",
    "parse_retention",
    "pool_pairs",
    "random_select",
    "received_attention",
    "retention_schedule",
    "round_half_up",
    "select_per_window",
    "visionzip_select",
    "window_keep_count",
    "windowed_received_attention",
]
