"""Token layout: for every prompt position, its modality, window, frame pair, patch row/col and time span.

Derived only from input_ids, the video grid (t, h, w), the seconds per temporal grid and the model's special
token ids -- the same rule the model's M-RoPE index uses (checked against `get_rope_index` in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.base import TokenIds  # noqa: F401 -- the adapter names them; re-exported for layout callers

TEXT, VIDEO, AUDIO = 0, 1, 2
MODALITY_NAMES = {TEXT: "text", VIDEO: "video", AUDIO: "audio"}


@dataclass
class TokenLayout:
    """Per-position tensors of length S (batch 1). Fields are -1 / nan where they do not apply."""

    modality: torch.Tensor  # (S,) long: TEXT / VIDEO / AUDIO
    window: torch.Tensor  # (S,) long: 2-second window id, -1 for text
    t: torch.Tensor  # (S,) long: temporal grid (frame pair) index of video tokens, -1 otherwise
    row: torch.Tensor  # (S,) long: merged-patch row of video tokens, -1 otherwise
    col: torch.Tensor  # (S,) long
    audio_index: torch.Tensor  # (S,) long: audio token (40 ms frame) index, -1 otherwise
    start_s: torch.Tensor  # (S,) float: time span in seconds, nan for text
    end_s: torch.Tensor  # (S,) float
    grid_hw: tuple[int, int]  # merged-token grid (rows, cols) of one frame pair
    num_windows: int
    seconds_per_window: float

    @property
    def length(self) -> int:
        return int(self.modality.numel())

    @property
    def nontext(self) -> torch.Tensor:
        return self.modality != TEXT

    def counts(self) -> dict[str, int]:
        return {name: int((self.modality == m).sum()) for m, name in MODALITY_NAMES.items()}


def build_layout(
    input_ids: torch.Tensor,
    token_ids: TokenIds,
    video_grid_thw: torch.Tensor | None,
    seconds_per_grid: float,
    *,
    spatial_merge_size: int = 2,
    audio_tokens_per_second: float = 25.0,
    seconds_per_window: float = 2.0,
    positions_per_second: float | None = None,
) -> TokenLayout:
    """Layout of one prompt (batch 1) holding at most one video (with or without its audio track).

    input_ids: (S,) or (1, S). The i-th <|VIDEO|> position holds vision row i in (t, h, w) raster order after
    the 2x2 merge; the k-th <|AUDIO|> position holds audio token k. The constants come from the model family's
    adapter (`layout_kwargs`): Qwen2.5-Omni 25 audio tokens and M-RoPE positions per second, 2-second windows;
    Qwen3-Omni 13 and 13, one window per temporal grid. positions_per_second defaults to audio_tokens_per_second.
    """
    pps = audio_tokens_per_second if positions_per_second is None else positions_per_second
    ids = input_ids.reshape(-1).cpu()
    S = ids.numel()
    modality = torch.full((S,), TEXT, dtype=torch.long)
    modality[ids == token_ids.video] = VIDEO
    modality[ids == token_ids.audio] = AUDIO
    if (ids == token_ids.image).any():
        raise ValueError("images in the prompt are not supported; pass one video (with or without audio)")

    minus = torch.full((S,), -1, dtype=torch.long)
    window, t, row, col, aidx = minus.clone(), minus.clone(), minus.clone(), minus.clone(), minus.clone()
    start = torch.full((S,), float("nan"), dtype=torch.float64)
    end = start.clone()
    grid_hw = (0, 0)

    vpos = (modality == VIDEO).nonzero().squeeze(-1)  # (Nv,)
    if vpos.numel():
        if video_grid_thw is None or video_grid_thw.shape[0] != 1:
            raise ValueError("expected exactly one video grid for the video tokens in the prompt")
        gt, gh, gw = (int(x) for x in video_grid_thw[0])
        hh, ww = gh // spatial_merge_size, gw // spatial_merge_size
        if gt * hh * ww != vpos.numel():
            raise ValueError(f"video grid {gt}x{gh}x{gw} does not match {vpos.numel()} video tokens")
        grid_hw = (hh, ww)
        i = torch.arange(vpos.numel())
        t[vpos] = i // (hh * ww)
        row[vpos] = (i % (hh * ww)) // ww
        col[vpos] = i % ww
        start[vpos] = t[vpos].double() * seconds_per_grid
        end[vpos] = start[vpos] + seconds_per_grid
        # Window rule of the processor / get_rope_index: the temporal position id t*spg*pps in window chunks.
        tpos = (t[vpos].double() * seconds_per_grid * pps).long()
        window[vpos] = tpos // max(1, round(seconds_per_window * pps))

    apos = (modality == AUDIO).nonzero().squeeze(-1)
    if apos.numel():
        k = torch.arange(apos.numel())
        aidx[apos] = k
        start[apos] = k.double() / audio_tokens_per_second
        end[apos] = (k + 1).double() / audio_tokens_per_second
        window[apos] = k // max(1, round(seconds_per_window * audio_tokens_per_second))

    num_windows = int(window.max()) + 1 if (window >= 0).any() else 0
    return TokenLayout(
        modality, window, t, row, col, aidx, start, end, grid_hw, num_windows, seconds_per_window
    )
