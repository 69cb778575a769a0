"""Server-side overlay images for the layer explorer: frames with pruned patches dimmed and survivors outlined,
and the audio track with its surviving tokens highlighted (block sizes and spans come from the run record).
Pure numpy + PIL; every function returns an (H, W, 3) uint8 image that Gradio ships as one small PNG (plotly
image traces would cost ~100x the bytes).

Scores colour the survivors from low (dark violet) to high (yellow); tokens with no score are outlined white.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.stats import rankdata

from seats_core.run.media import log_mel, waveform_for_display

# Colour map anchors from low to high score (perceptually ordered, like viridis), interpolated linearly.
COLORMAP = np.array(
    [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=np.float32
)
NO_SCORE_COLOR = (255, 255, 255)
DIM = 0.22  # brightness factor of pruned regions
BACKGROUND = (24, 24, 30)
TEXT_COLOR = (230, 230, 235)
GUIDE_COLOR = (120, 120, 140)

MAX_GRID_WIDTH = 1280  # px, the whole frame grid
MAX_GRID_COLUMNS = 5  # thumbnails per row
NARROW_GRID_COLUMNS = 2  # on a phone (the page says it is narrow): two thumbnails per row, readable captions
NARROW_AUDIO_WIDTH = 480  # px of the audio strip on a phone: its time labels stay readable when scaled down
MARK_PX = 3  # outline width of marked tokens (the clicked one and what it attends to / what attends to it)
TINT = 0.55  # how much of a live block's colour is its score's (the Fusion view colours the patches)
MIN_BLOCK_PX = 6  # a token block is never drawn smaller than this
MIN_THUMB_PX = (
    240  # small frames (the miniature's 112 px) are enlarged, nearest-neighbour, to about this width
)
GAP_PX = 6  # between thumbnails
FONT_PX = 15  # captions, legend and axis labels drawn into the images (readable when the page shrinks them)
LABEL_PX = 22  # caption strip above each thumbnail
LEGEND_PX = 26  # colour legend strip under the grid
LEGEND_BAR_PX = 160

AUDIO_WIDTH = 960  # px (the page scales it to its panel: ~100 px tall on a 390 px phone)
AUDIO_PLOT_PX = 200  # waveform / spectrogram height
TOKEN_BAR_PX = 16  # per-token score bar above the plot
AXIS_PX = 22  # time axis under the plot
SPEC_MELS = 64


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values (...,) in [0, 1] (nan = no score) to colours (..., 3) uint8."""
    v = np.asarray(values, dtype=np.float32)
    missing = np.isnan(v)
    x = np.clip(np.nan_to_num(v), 0.0, 1.0) * (len(COLORMAP) - 1)  # (...,)
    lo = np.floor(x).astype(np.int64).clip(0, len(COLORMAP) - 2)
    frac = (x - lo)[..., None]  # (..., 1)
    rgb = COLORMAP[lo] * (1 - frac) + COLORMAP[lo + 1] * frac  # (..., 3)
    rgb[missing] = NO_SCORE_COLOR
    return rgb.round().astype(np.uint8)


def rank_normalise(score: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Scores (N,) -> rank percentiles in [0, 1] among the alive tokens that have a score; nan elsewhere.

    Ranks, not min-max: relevance scores are probabilities spanning orders of magnitude, importance is near 1.
    Ties share their mean rank, so equal scores get equal colours.
    """
    score = np.asarray(score, dtype=np.float64)
    out = np.full(score.shape, np.nan)
    sel = np.asarray(alive, bool) & ~np.isnan(score)
    n = int(sel.sum())
    if n == 0:
        return out
    if n == 1:
        out[sel] = 1.0
        return out
    ranks = rankdata(score[sel], method="average") - 1  # (n,) 0-based, ties share their mean rank
    out[sel] = ranks / (n - 1)
    return out


@functools.lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=FONT_PX)


def _text_px(s: str) -> int:
    """Width in pixels of `s` in the images' font."""
    return int(math.ceil(_font().getlength(s)))


def _text(img: Image.Image, xy: tuple[int, int], s: str, fill=TEXT_COLOR) -> None:
    ImageDraw.Draw(img).text(xy, s, fill=fill, font=_font())


def _legend(width: int, note: str) -> np.ndarray:
    """A strip (LEGEND_PX or twice that, width, 3): gradient bar low -> high plus a note (on a second line when
    it would not fit beside the bar, so it is never cut)."""
    x0 = 10 + _text_px("low")
    beside = x0 + LEGEND_BAR_PX + 6 + _text_px(f"high   {note}") <= width
    img = Image.new("RGB", (width, LEGEND_PX if beside else 2 * LEGEND_PX), BACKGROUND)
    _text(img, (4, 5), "low")
    bar = colormap(np.linspace(0, 1, LEGEND_BAR_PX))  # (B, 3)
    img.paste(Image.fromarray(np.repeat(bar[None], LEGEND_PX - 10, axis=0)), (x0, 5))
    if beside:
        _text(img, (x0 + LEGEND_BAR_PX + 6, 5), f"high   {note}")
    else:
        _text(img, (x0 + LEGEND_BAR_PX + 6, 5), "high")
        _text(img, (4, LEGEND_PX + 3), note)  # a second line under the bar
    return np.asarray(img)


def _thumbnail(
    frame: np.ndarray, alive: np.ndarray, color: np.ndarray, block_px: int, tint: bool = False
) -> np.ndarray:
    """One frame (H, W, 3) -> (gh*block_px, gw*block_px, 3): dead blocks dimmed, live blocks outlined.

    alive (gh, gw) bool, color (gh, gw, 3) uint8 outline colour of each block; tint: live blocks filled with
    their colour instead (TINT of it) and outlined white.
    """
    gh, gw = alive.shape
    size = (gw * block_px, gh * block_px)
    enlarge = size[0] >= frame.shape[1]  # small frames: nearest-neighbour keeps the pixels readable
    resample = Image.Resampling.NEAREST if enlarge else Image.Resampling.BILINEAR
    img = np.asarray(Image.fromarray(frame).resize(size, resample), dtype=np.float32)  # (h, w, 3)
    rows = np.arange(gh * block_px) // block_px  # (h,) block row of each pixel row
    cols = np.arange(gw * block_px) // block_px  # (w,)
    live = alive[rows][:, cols]  # (h, w)
    img[~live] *= DIM
    within_y = np.arange(gh * block_px) % block_px  # (h,)
    within_x = np.arange(gw * block_px) % block_px  # (w,)
    edge = (within_y[:, None] == 0) | (within_y[:, None] == block_px - 1)
    edge = edge | (within_x[None, :] == 0) | (within_x[None, :] == block_px - 1)  # (h, w)
    outline = live & edge
    per_px = color[rows][:, cols].astype(np.float32)  # (h, w, 3)
    if tint:
        img[live] = (1 - TINT) * img[live] + TINT * per_px[live]
        img[outline] = NO_SCORE_COLOR
    else:
        img[outline] = per_px[outline]
    return img.round().astype(np.uint8)


def grid_layout(grids: int, gw: int, block: int, max_columns: int = MAX_GRID_COLUMNS) -> tuple[int, int, int]:
    """(thumbnail columns, rows, drawn pixels per token block) of the frame grid: blocks as large as the record's
    `block` (enlarged so a thumbnail is about MIN_THUMB_PX wide) while the grid fits MAX_GRID_WIDTH."""
    nrows = max(1, math.ceil(grids / max_columns))
    ncols = max(1, math.ceil(grids / nrows))  # balanced rows: 6 grids as 2 x 3, not 5 + 1
    fit = (MAX_GRID_WIDTH - GAP_PX * (ncols + 1)) // (ncols * max(gw, 1))
    want = max(block, math.ceil(MIN_THUMB_PX / max(gw, 1)))
    return ncols, nrows, max(MIN_BLOCK_PX, min(want, fit))


def token_at(
    x: int, y: int, grids: int, gh: int, gw: int, block: int, max_columns: int = MAX_GRID_COLUMNS
) -> tuple[int, int, int] | None:
    """(temporal grid, token row, token col) under pixel (x, y) of `frame_grid`'s image, or None (a gap or a
    caption). The inverse of the layout frame_grid draws."""
    ncols, _, block_px = grid_layout(grids, gw, block, max_columns)
    tw, th = gw * block_px, gh * block_px
    c, dx = divmod(int(x) - GAP_PX, tw + GAP_PX)
    r, dy = divmod(int(y) - GAP_PX, th + LABEL_PX + GAP_PX)
    dy -= LABEL_PX
    g = r * ncols + c
    if c < 0 or r < 0 or c >= ncols or not (0 <= dx < tw and 0 <= dy < th) or g >= grids:
        return None
    return g, dy // block_px, dx // block_px


def frame_grid(
    frames: np.ndarray,
    t: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    alive: np.ndarray,
    score01: np.ndarray,
    block: int,
    captions: list[str] | None = None,
    note: str = "",
    frames_per_grid: int = 2,
    *,
    max_columns: int = MAX_GRID_COLUMNS,
    tint: bool = False,
    marks: list[tuple[int, int, int, tuple]] = (),
) -> np.ndarray:
    """The sampled frames as a grid of thumbnails, one per temporal grid (frames_per_grid consecutive frames
    share tokens; the first of them is drawn).

    frames (T, H, W, 3) uint8 with H, W multiples of `block`; t/row/col/alive/score01 (Nv,) describe the video
    tokens (score01 in [0, 1] or nan). tint: fill live blocks with their colour (the Fusion view), outlines
    white; marks: (t, row, col, rgb) blocks outlined MARK_PX wide on top. Returns (H', W', 3) uint8.
    """
    n_frames, height, width = frames.shape[:3]
    grids = n_frames // frames_per_grid
    gh, gw = height // block, width // block
    alive_g = np.zeros((grids, gh, gw), bool)
    score_g = np.full((grids, gh, gw), np.nan)
    t, row, col = (np.asarray(a, np.int64) for a in (t, row, col))
    alive_g[t, row, col] = np.asarray(alive, bool)
    score_g[t, row, col] = score01
    color_g = colormap(score_g)  # (grids, gh, gw, 3)

    ncols, nrows, block_px = grid_layout(grids, gw, block, max_columns)
    tw, th = gw * block_px, gh * block_px
    out_w = ncols * tw + (ncols + 1) * GAP_PX
    out_h = nrows * (th + LABEL_PX + GAP_PX) + GAP_PX
    canvas = Image.new("RGB", (out_w, out_h), BACKGROUND)
    for g in range(grids):
        r, c = divmod(g, ncols)
        x = GAP_PX + c * (tw + GAP_PX)
        y = GAP_PX + r * (th + LABEL_PX + GAP_PX)
        thumb = _thumbnail(frames[frames_per_grid * g], alive_g[g], color_g[g], block_px, tint)
        canvas.paste(Image.fromarray(thumb), (x, y + LABEL_PX))
        for tg, r_, c_, rgb in marks:
            if tg == g:
                x0, y0 = x + c_ * block_px, y + LABEL_PX + r_ * block_px
                box = [x0, y0, x0 + block_px - 1, y0 + block_px - 1]
                ImageDraw.Draw(canvas).rectangle(box, outline=tuple(rgb), width=MARK_PX)
        n_live = int(alive_g[g].sum())
        caption = captions[g] if captions else f"grid {g}"
        _text(canvas, (x, y + 2), f"{caption}  {n_live}/{gh * gw} kept")
    legend = _legend(out_w, note or "outline = kept, colour = score; dimmed = pruned")
    return np.concatenate([np.asarray(canvas), legend], axis=0)


def _message(width: int, height: int, text: str) -> np.ndarray:
    img = Image.new("RGB", (width, height), BACKGROUND)
    _text(img, (10, height // 2 - 6), text)
    return np.asarray(img)


def _waveform_panel(audio: np.ndarray, sample_rate: int, width: int) -> np.ndarray:
    """Min/max envelope (AUDIO_PLOT_PX, width, 3) uint8 of mono audio."""
    _, lo, hi = waveform_for_display(audio, sample_rate, points=width)  # (P,) each, P <= width
    panel = np.zeros((AUDIO_PLOT_PX, width, 3), np.float32)
    panel[:] = BACKGROUND
    peak = max(float(np.abs(audio).max()) if audio.size else 0.0, 1e-6)
    mid = (AUDIO_PLOT_PX - 1) / 2
    x_of = (np.arange(len(lo)) * width / max(len(lo), 1)).astype(np.int64)  # (P,)
    top = (mid - hi / peak * mid).round().astype(np.int64).clip(0, AUDIO_PLOT_PX - 1)
    bottom = (mid - lo / peak * mid).round().astype(np.int64).clip(0, AUDIO_PLOT_PX - 1)
    ys = np.arange(AUDIO_PLOT_PX)[:, None]  # (Hp, 1)
    fill = (ys >= top[None, :]) & (ys <= bottom[None, :])  # (Hp, P)
    cols = np.zeros((AUDIO_PLOT_PX, width), bool)
    cols[:, x_of] = fill
    panel[cols] = (180, 200, 255)
    panel[int(mid)] = np.maximum(panel[int(mid)], np.array(GUIDE_COLOR, np.float32))
    return panel


def _spectrogram_panel(audio: np.ndarray, sample_rate: int, width: int) -> np.ndarray:
    """Log-mel spectrogram (AUDIO_PLOT_PX, width, 3), low frequencies at the bottom."""
    db, _ = log_mel(audio, sample_rate, n_mels=SPEC_MELS)  # (n_mels, F), 0 = loudest, floor -80
    level = (db - db.min()) / max(float(db.max() - db.min()), 1e-6)  # (n_mels, F) in [0, 1]
    rgb = colormap(level[::-1])  # (n_mels, F, 3), high frequencies on top
    img = Image.fromarray(rgb).resize((width, AUDIO_PLOT_PX), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32)


def _frequency_axis(body: np.ndarray, sample_rate: int) -> np.ndarray:
    """The spectrogram's frequency labels (text.mel_ticks) drawn at its left edge, below the token bar."""
    from app.text import mel_ticks

    img = Image.fromarray(body)
    draw = ImageDraw.Draw(img)
    for y, label in mel_ticks(sample_rate, SPEC_MELS, AUDIO_PLOT_PX):
        yy = TOKEN_BAR_PX + y
        draw.line([(0, yy), (5, yy)], fill=TEXT_COLOR)
        draw.rectangle(
            [7, yy - FONT_PX // 2 - 1, 9 + _text_px(label), yy + FONT_PX // 2 + 1], fill=BACKGROUND
        )
        draw.text((8, yy - FONT_PX // 2 - 1), label, fill=TEXT_COLOR, font=_font())
    return np.asarray(img, dtype=np.float32)


def audio_strip(
    audio: np.ndarray | None,
    sample_rate: int,
    start_s: np.ndarray,
    end_s: np.ndarray,
    alive: np.ndarray,
    score01: np.ndarray,
    duration_s: float,
    mode: str = "waveform",
    window_starts_s: list[float] | None = None,
    width: int = AUDIO_WIDTH,
    marks: list[tuple[float, float, tuple]] = (),
) -> np.ndarray:
    """Audio view (H, width, 3): a per-token bar (kept tokens coloured by score), the waveform or spectrogram
    with pruned token spans dimmed, window boundaries and a time axis.

    start_s/end_s/alive/score01 (Na,) describe the audio tokens (their spans come from the record); marks:
    (start_s, end_s, rgb) spans boxed MARK_PX wide over the bar and the plot.
    """
    if audio is None:
        return _message(
            width, TOKEN_BAR_PX + AUDIO_PLOT_PX + AXIS_PX, "no audio track: this clip ran video-only"
        )
    if mode not in ("waveform", "spectrogram"):
        raise ValueError(f"mode must be 'waveform' or 'spectrogram', got {mode!r}")
    panel = (_spectrogram_panel if mode == "spectrogram" else _waveform_panel)(audio, sample_rate, width)
    px_per_s = width / max(duration_s, 1e-6)
    x0 = np.floor(np.asarray(start_s) * px_per_s).astype(np.int64).clip(0, width)  # (Na,)
    x1 = np.ceil(np.asarray(end_s) * px_per_s).astype(np.int64).clip(0, width)
    live_px = np.zeros(width, bool)
    bar = np.zeros((TOKEN_BAR_PX, width, 3), np.float32)
    bar[:] = BACKGROUND
    colors = colormap(score01)  # (Na, 3)
    for a, b, keep, colr in zip(x0, x1, np.asarray(alive, bool), colors):
        if keep:
            live_px[a:b] = True
            bar[1:-1, a:b] = colr
    panel[:, ~live_px] *= DIM
    body = np.concatenate([bar, panel], axis=0)  # (TB + Hp, width, 3)
    for s in window_starts_s or []:
        x = int(round(s * px_per_s))
        if 0 < x < width:
            body[:, x] = GUIDE_COLOR
    if mode == "spectrogram":
        body = _frequency_axis(body.round().astype(np.uint8), sample_rate)
    if marks:
        img = Image.fromarray(np.asarray(body).round().astype(np.uint8))
        for a, b, rgb in marks:
            xa, xb = int(a * px_per_s), max(int(math.ceil(b * px_per_s)) - 1, int(a * px_per_s) + 2)
            ImageDraw.Draw(img).rectangle([xa, 0, xb, img.height - 1], outline=tuple(rgb), width=MARK_PX)
        body = np.asarray(img, dtype=np.float32)
    axis = Image.new("RGB", (width, AXIS_PX), BACKGROUND)
    step = max(1, math.ceil(duration_s / 12))  # at most ~12 labelled seconds
    for sec in range(0, int(duration_s) + 1, step):
        x = int(round(sec * px_per_s))
        ImageDraw.Draw(axis).line([(x, 0), (x, 3)], fill=GUIDE_COLOR)
        _text(axis, (min(x + 2, width - _text_px(f"{sec}s") - 2), 3), f"{sec}s")
    return np.concatenate([body.round().astype(np.uint8), np.asarray(axis)], axis=0)
