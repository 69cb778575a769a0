"""Benchmark tooling, apart from the adapters used at run time: thinker configs cut down for a small machine and
processor-shaped inputs with a family's real token layout, for random-weight speed benchmarks (`seats bench`).

Each family's own rules (which vision blocks attend fully, how widths narrow) are a `Tooling` subclass in its folder
(models/<family>/tooling.py), found by `family.tooling_of(config)`.
"""

from __future__ import annotations

import torch

from .base import MEL_FRAMES_PER_SECOND, media_token_ids
from .family import family_of


class Tooling:
    """How a family's thinker config shrinks (subclass per family; override what differs)."""

    family = ""

    @classmethod
    def reduce_config(
        cls, cfg, *, layers=None, encoder_layers=None, vocab=None, experts=None, width=None
    ) -> list[str]:
        """Cut a thinker config in place (decoder layers, encoder depths, vocabulary, MoE experts, widths / `width`
        with head dims kept) for a small machine; returns what was reduced, in words."""
        tc, notes = cfg.text_config, []
        if layers is not None and layers != tc.num_hidden_layers:
            notes.append(f"decoder layers {layers} of {tc.num_hidden_layers}")
            tc.num_hidden_layers = layers
            if getattr(tc, "layer_types", None) is not None:
                tc.layer_types = list(tc.layer_types[:layers])
        if encoder_layers is not None:
            vc = cfg.vision_config
            if encoder_layers < vc.depth:
                depth = vc.depth
                cls.reduce_vision(vc, encoder_layers)
                notes.append(f"vision blocks {vc.depth} of {depth}")
            ac = cfg.audio_config
            if encoder_layers < ac.encoder_layers:
                notes.append(f"audio layers {encoder_layers} of {ac.encoder_layers}")
                ac.encoder_layers = encoder_layers
        if experts is not None and experts < (getattr(tc, "num_experts", 0) or 0):
            notes.append(
                f"experts {experts} of {tc.num_experts} (active {min(experts, tc.num_experts_per_tok)})"
            )
            tc.num_experts = experts
            tc.num_experts_per_tok = min(experts, tc.num_experts_per_tok)
        if vocab is not None and vocab < tc.vocab_size:
            notes.append(f"vocabulary {vocab} of {tc.vocab_size}")
            cls.shrink_vocab(cfg, vocab)
        if width is not None and width > 1:
            notes.append(cls.narrow(cfg, width))  # last: the encoder depths above may rebuild sub-configs
        return notes

    @classmethod
    def narrow(cls, cfg, width: int) -> str:
        """Divide the widths by `width` keeping head dims; a family without a rule keeps its widths (says so)."""
        return f"widths kept (no narrowing rule for {cls.family})"

    @classmethod
    def reduce_vision(cls, vc, depth: int) -> None:
        vc.depth = depth

    @classmethod
    def shrink_vocab(cls, cfg, vocab: int) -> None:
        """Give the text model `vocab` entries; special ids (media, eos, pad) move to the top of the new range."""
        tc = cfg.text_config
        top = iter(range(vocab - 1, -1, -1))
        for name in family_of(cfg).special_id_fields:
            if getattr(cfg, name, None) is not None and getattr(cfg, name) >= vocab:
                setattr(cfg, name, next(top))
        for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
            value = getattr(tc, name, None)
            if isinstance(value, int) and value >= vocab:
                setattr(tc, name, next(top))
        tc.vocab_size = vocab


def media_block(ad, grid_thw: tuple[int, int, int], audio_tokens: int, seconds_per_grid: float) -> list:
    """Token ids of one video with its audio track, laid out as the family's processor does.

    ad: the family adapter of the thinker. Video grid t sits at temporal position t * spg * positions_per_second, audio token k at k. With
    seconds_per_chunk (Qwen2.5), positions are cut into chunks and chunk j contributes its video tokens, then
    its audio tokens; without (Qwen3), each grid's tokens come before every audio token at or after its
    position. Framed by <vision_bos><audio_bos> ... <audio_eos><vision_eos>.
    """
    ids, m = media_token_ids(ad.config), ad.media_layout
    t, h, w = grid_thw
    per_grid = (h // m.spatial_merge) * (w // m.spatial_merge)
    tpos = [int(g * seconds_per_grid * m.positions_per_second) for g in range(t)]
    out = [ids["vision_bos"], ids["audio_bos"]]
    if m.seconds_per_chunk is not None:
        per_chunk = int(m.positions_per_second * m.seconds_per_chunk)
        video_chunk = [p // per_chunk for p in tpos]
        chunks = max([*video_chunk, (audio_tokens - 1) // per_chunk if audio_tokens else -1]) + 1
        for j in range(chunks):
            out += [ids["video"]] * (per_grid * video_chunk.count(j))
            out += [ids["audio"]] * max(0, min(audio_tokens, (j + 1) * per_chunk) - j * per_chunk)
    else:
        k = 0
        for p in tpos:
            n = max(0, min(audio_tokens, p) - k)  # audio tokens before this grid's position
            out += [ids["audio"]] * n + [ids["video"]] * per_grid
            k += n
        out += [ids["audio"]] * (audio_tokens - k)
    return out + [ids["audio_eos"], ids["vision_eos"]]


def synthetic_inputs(
    ad,
    frames: int,
    fps: float,
    side: int,
    filler: tuple[int, int],
    seed: int = 0,
    seconds: float | None = None,
) -> dict:
    """Processor-shaped inputs with the real token layout for `frames` frames at side x side and `fps`, with
    audio of the same length: random pixels and log-mel features, `filler` = (before, after) ordinary text
    ids around the media block (standing for the system prompt / chat markup and the question). The audio
    lasts `seconds` (default: the frames' duration)."""
    vc, m = ad.config.vision_config, ad.media_layout
    device, dtype = next(ad.thinker.parameters()).device, next(ad.thinker.parameters()).dtype
    if side % m.token_block_px:
        raise ValueError(f"--side must be a multiple of {m.token_block_px}, got {side}")
    frames += frames % m.temporal_patch  # whole temporal grids
    patch = m.token_block_px // m.spatial_merge
    grid = (frames // m.temporal_patch, side // patch, side // patch)
    spg = m.temporal_patch / fps
    seconds = frames / fps if seconds is None else seconds
    mel = round(seconds * MEL_FRAMES_PER_SECOND)
    plain = min(media_token_ids(ad.config).values())  # ordinary text ids lie below every special id
    block = media_block(ad, grid, ad.audio_output_length(mel), spg)
    text = [(i * 7919) % plain for i in range(sum(filler))]
    input_ids = text[: filler[0]] + block + text[filler[0] :]
    g = torch.Generator().manual_seed(seed)
    patch_dim = vc.in_channels * m.temporal_patch * patch**2
    n_patches = grid[0] * grid[1] * grid[2]
    return dict(
        input_ids=torch.tensor([input_ids], device=device),
        attention_mask=torch.ones(1, len(input_ids), dtype=torch.long, device=device),
        pixel_values_videos=torch.randn(n_patches, patch_dim, generator=g).to(device, dtype),  # (N, C*T*P*P)
        video_grid_thw=torch.tensor([grid], device=device),
        video_second_per_grid=torch.tensor([spg], device=device),
        input_features=torch.randn(1, ad.config.audio_config.num_mel_bins, mel, generator=g).to(
            device, dtype
        ),
        feature_attention_mask=torch.ones(1, mel, dtype=torch.long, device=device),
    )
