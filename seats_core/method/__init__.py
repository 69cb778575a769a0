"""The SEATS method: pure torch functions, no model code (spec §1-§3, §5).

Stage I selection (selection), Stage II budget (budget) and relevance (scores), and the retention schedule
that ties the stages to a layer-averaged R (schedule).
"""

from .budget import allocate_budget, allocate_budget_detailed, budget_info, run_windows, window_budget
from .importance import (
    chunked_received_attention,
    fixed_chunks,
    pool_rows,
    topk_mask,
    windowed_received_attention,
)
from .schedule import (
    ENCODER_SCALE,
    KEEP_DECIMALS,
    PRESETS,
    PRESETS_QWEN3,
    ROUNDINGS,
    default_drop_layers,
    fastv_keep_ratio,
    layer_levels,
    parse_retention,
    retention_schedule,
    round_count,
    round_half_up,
)
from .scores import last_token_relevance
from .selection import (
    AUDIO_BLOCK_TOKENS,
    VIDEO_BLOCK_GRIDS,
    block_windows,
    diversity_select,
    pool_pairs,
    random_select,
    received_attention,
    select_per_window,
    select_windows,
    visionzip_select,
    window_keep_count,
)

__all__ = [
    "AUDIO_BLOCK_TOKENS",
    "ENCODER_SCALE",
    "KEEP_DECIMALS",
    "ROUNDINGS",
    "VIDEO_BLOCK_GRIDS",
    "block_windows",
    "PRESETS",
    "PRESETS_QWEN3",
    "allocate_budget",
    "chunked_received_attention",
    "fixed_chunks",
    "allocate_budget_detailed",
    "budget_info",
    "default_drop_layers",
    "diversity_select",
    "fastv_keep_ratio",
    "last_token_relevance",
    "layer_levels",
    "parse_retention",
    "pool_pairs",
    "pool_rows",
    "random_select",
    "received_attention",
    "retention_schedule",
    "round_count",
    "round_half_up",
    "run_windows",
    "select_per_window",
    "select_windows",
    "window_budget",
    "topk_mask",
    "visionzip_select",
    "window_keep_count",
    "windowed_received_attention",
]
