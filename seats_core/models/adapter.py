"""The one place that knows transformers' Qwen2.5-Omni internals: module paths, kwarg names, cache layout.

A transformers upgrade that moves any of these touches this file only. Unknown layouts raise
`UnsupportedModel` naming the installed transformers version.
"""

from __future__ import annotations

import contextlib

import torch
import transformers

from ..layout import TokenIds

# Decoder-layer kwargs a drop must slice along the sequence axis (transformers 5.x names).
KW_HIDDEN = "hidden_states"
KW_MASK = "attention_mask"
KW_ROPE = "position_embeddings"
KW_POS = "position_ids"
KW_CACHE = "past_key_values"


class UnsupportedModel(RuntimeError):
    pass


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., S, d) with cos/sin broadcastable to it (transformers' rotate-half convention)."""
    return x * cos + _rotate_half(x) * sin


class OmniAdapter:
    """Views of one loaded Qwen2.5-Omni thinker (`Qwen2_5OmniThinkerForConditionalGeneration`)."""

    def __init__(self, thinker: torch.nn.Module):
        try:
            self.thinker = thinker
            self.text_model = thinker.model.language_model
            self.layers = self.text_model.layers
            self.visual = thinker.model.visual
            self.audio_tower = thinker.model.audio_tower
            self.config = thinker.config
            self.text_config = self.config.text_config if hasattr(self.config, "text_config") else self.config
            self.layers[0].self_attn.q_proj  # noqa: B018 -- structure check
        except AttributeError as e:
            raise UnsupportedModel(
                f"{type(thinker).__name__} does not have the Qwen2.5-Omni thinker layout this version of seats_core "
                f"expects (transformers {transformers.__version__}): {e}. Load the thinker with "
                "Qwen2_5OmniThinkerForConditionalGeneration."
            ) from e

    # ---- static facts -------------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def token_ids(self) -> TokenIds:
        c = self.config
        return TokenIds(video=c.video_token_id, audio=c.audio_token_id, image=c.image_token_id)

    @property
    def spatial_merge_size(self) -> int:
        return self.visual.spatial_merge_size

    @property
    def attn_implementation(self) -> str:
        return self.text_config._attn_implementation

    @property
    def num_heads(self) -> int:
        return self.text_config.num_attention_heads

    @property
    def num_kv_heads(self) -> int:
        return self.text_config.num_key_value_heads

    # ---- decoder layer calls ------------------------------------------------------------------------------
    @staticmethod
    def split_layer_call(args: tuple, kwargs: dict) -> torch.Tensor:
        return args[0] if args else kwargs[KW_HIDDEN]

    @staticmethod
    def join_layer_call(args: tuple, kwargs: dict, hidden: torch.Tensor) -> tuple[tuple, dict]:
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, KW_HIDDEN: hidden}

    def query_key(self, layer_idx: int, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """Re-apply layer `layer_idx`'s input norm and q/k projections (+ M-RoPE) to `hidden` (1, S, D).

        Returns q of the last position (H, d) and k of all positions (H_kv, S, d), both after RoPE.
        """
        layer = self.layers[layer_idx]
        attn = layer.self_attn
        x = layer.input_layernorm(hidden)  # (1, S, D)
        S = x.shape[1]
        hd = attn.head_dim
        q = attn.q_proj(x[:, -1:]).view(1, 1, -1, hd).transpose(1, 2)  # (1, H, 1, d)
        k = attn.k_proj(x).view(1, S, -1, hd).transpose(1, 2)  # (1, H_kv, S, d)
        q = apply_rope(q, cos[:, -1:].unsqueeze(1), sin[:, -1:].unsqueeze(1))
        k = apply_rope(k, cos.unsqueeze(1), sin.unsqueeze(1))
        return q[0, :, 0], k[0]

    def query_key_rows(
        self, layer_idx: int, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Queries of a few rows and keys of all positions of layer `layer_idx`, recomputed from its input.

        hidden (1, S, D) is the layer's input (before its input norm); cos/sin (1, S, d); rows (R,) long.
        Returns q (H, R, d) and k (H, S, d) after M-RoPE, with the KV heads repeated as the layer's attention
        does (query head h reads KV head h // (H / H_kv)), and the layer's softmax scale.
        """
        layer = self.layers[layer_idx]
        attn = layer.self_attn
        hd = attn.head_dim
        x = layer.input_layernorm(hidden)  # (1, S, D)
        S, R = x.shape[1], rows.numel()
        q = attn.q_proj(x[:, rows]).view(1, R, -1, hd).transpose(1, 2)  # (1, H, R, d)
        k = attn.k_proj(x).view(1, S, -1, hd).transpose(1, 2)  # (1, H_kv, S, d)
        q = apply_rope(q, cos[:, rows].unsqueeze(1), sin[:, rows].unsqueeze(1))
        k = apply_rope(k, cos.unsqueeze(1), sin.unsqueeze(1))
        k = k[0].repeat_interleave(q.shape[1] // k.shape[1], dim=0)  # (H, S, d)
        return q[0], k, attn.scaling

    def run_layers(
        self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int, stop: int | None = None
    ) -> torch.Tensor:
        """Run decoder layers start..stop-1 on `hidden` (1, S, D) alone: causal among these S tokens, no cache.

        cos/sin (1, S, d) are the RoPE tables of exactly these tokens (rows of the full prompt's tables, so
        kept tokens keep their original positions). SDPA / flash use their causal path (mask None); eager gets
        an explicit additive causal mask. Returns the last layer's output (1, S, D), before the final norm.
        """
        S = hidden.shape[1]
        mask = None
        if self.attn_implementation == "eager":
            blocked = torch.ones(S, S, dtype=torch.bool, device=hidden.device).triu(1)  # (S, S) future keys
            mask = torch.zeros(1, 1, S, S, dtype=hidden.dtype, device=hidden.device)
            mask = mask.masked_fill(blocked, torch.finfo(hidden.dtype).min)
        for layer in self.layers[start:stop]:
            hidden = layer(
                hidden, **{KW_MASK: mask, KW_ROPE: (cos, sin), KW_POS: None, KW_CACHE: None}, use_cache=False
            )
        return hidden

    def last_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm + LM head on the last position of a last-layer output (1, S, D) -> logits (V,)."""
        return self.thinker.lm_head(self.text_model.norm(hidden[:, -1:]))[0, 0]

    @contextlib.contextmanager
    def last_position_logits(self):
        """While active, the thinker's LM head sees only the last position (logits (B, 1, V)), like
        `logits_to_keep=1`: a prefill forward then costs D*V for the head instead of S*D*V."""
        handle = self.thinker.lm_head.register_forward_pre_hook(lambda module, args: (args[0][:, -1:],))
        try:
            yield
        finally:
            handle.remove()

    def encode_video_first(self, inputs: dict) -> dict:
        """Kwargs for a prefill call shaped like generate()'s in transformers 5.x: the vision encoder runs first
        (`get_video_features`) and the call gets its output as `mm_encoder_outputs` instead of the pixels.

        Hooks that expect the encoder to run before the prefill call (the Pruner's Stage-I importance) then see
        the same order as under generate(). Inputs without video are returned unchanged.
        """
        if "pixel_values_videos" not in inputs:
            return dict(inputs)
        rest = {k: v for k, v in inputs.items() if k != "pixel_values_videos"}
        video = self.thinker.model.get_video_features(
            inputs["pixel_values_videos"], inputs["video_grid_thw"], return_dict=True
        )
        return {**rest, "mm_encoder_outputs": {"video": video}}

    @property
    def media_delimiter_ids(self) -> tuple[int, ...]:
        """Ids of the text-modality markers around a media block (vision/audio bos and eos)."""
        c = self.config
        names = ("vision_start_token_id", "vision_end_token_id", "audio_start_token_id", "audio_end_token_id")
        return tuple(int(getattr(c, n)) for n in names if getattr(c, n, None) is not None)

    def audio_output_length(self, mel_frames: int) -> int:
        """Audio tokens the audio encoder makes from `mel_frames` feature frames (conv stride 2, then pool 2)."""
        _, out = self.audio_tower._get_feat_extract_output_lengths(torch.tensor([mel_frames]))
        return int(out[0])

    # ---- KV cache ---------------------------------------------------------------------------------------
    @staticmethod
    def cache_length(cache, layer_idx: int) -> int:
        if cache is None or layer_idx >= len(cache.layers):
            return 0
        return cache.layers[layer_idx].get_seq_length()

    @staticmethod
    def prune_cache(cache, layer_idx: int, keep: torch.Tensor) -> None:
        """Keep only positions `keep` (sorted, long) of one layer's cached K/V (B, H_kv, L, d)."""
        layer = cache.layers[layer_idx]
        if not getattr(layer, "is_initialized", True) or layer.keys is None or layer.keys.numel() == 0:
            return
        layer.keys = layer.keys.index_select(2, keep)
        layer.values = layer.values.index_select(2, keep)

    @staticmethod
    def cache_bytes(cache) -> int:
        if cache is None:
            return 0
        total = 0
        for layer in cache.layers:
            for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
        return total

    # ---- encoders: Stage-I importance statistics -------------------------------------------------------
    @property
    def vision_last_block(self) -> torch.nn.Module:
        return self.visual.blocks[-1]

    @property
    def audio_last_layer(self) -> torch.nn.Module:
        return self.audio_tower.layers[-1]

    def vision_qk(self, block_args: tuple, block_kwargs: dict):
        """q, k (H, N, d) of the last vision block, from its input, in the encoder's window-permuted order."""
        block = self.vision_last_block
        h = block_args[0] if block_args else block_kwargs["hidden_states"]  # (N, C)
        cos, sin = block_kwargs["position_embeddings"]  # (N, d)
        attn = block.attn
        x = block.norm1(h)
        N = x.shape[0]
        q = attn.q(x).reshape(N, attn.num_heads, -1).float()  # (N, H, d)
        k = attn.k(x).reshape(N, attn.num_heads, -1).float()
        cos, sin = cos.unsqueeze(-2).float(), sin.unsqueeze(-2).float()
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q.transpose(0, 1), k.transpose(0, 1), attn.scaling

    def vision_raster_order(self, grid_thw: torch.Tensor) -> torch.Tensor:
        """Index that maps the encoder's window-permuted merge units back to (t, h, w) raster order."""
        from transformers.vision_utils import get_vision_window_index

        v = self.visual
        window_index, _ = get_vision_window_index(
            grid_thw,
            spatial_merge_size=v.spatial_merge_size,
            window_size=v.window_size,
            patch_size=v.patch_size,
        )
        return torch.argsort(window_index.to(grid_thw.device))

    def audio_qk(self, layer_args: tuple, layer_kwargs: dict):
        """q, k (H, N, d) of the last audio layer from its input, plus its attention chunk boundaries."""
        layer = self.audio_last_layer
        h = layer_args[0] if layer_args else layer_kwargs["hidden_states"]  # (N, C)
        cu = layer_kwargs["cu_seqlens"]
        attn = layer.self_attn
        x = layer.self_attn_layer_norm(h)
        N = x.shape[0]
        q = attn.q_proj(x).reshape(N, attn.num_heads, -1).float().transpose(0, 1)  # (H, N, d)
        k = attn.k_proj(x).reshape(N, attn.num_heads, -1).float().transpose(0, 1)
        return q, k, attn.scaling, cu

    # ---- processor ------------------------------------------------------------------------------------
    @staticmethod
    def processor_inputs(processor, text: str, frames, fps: float, audio, sample_rate: int):
        """Run the stock processor on decoded media (frames (T,H,W,3) uint8 already resized, audio or None)."""
        # Frames arrive sampled and resized by seats_core.media (qwen-omni-utils rules); the processor only patchifies.
        videos_kwargs = dict(fps=fps, do_resize=False, do_sample_frames=False, cap_pixels_per_frame=True)
        kw = dict(text=text, videos=[frames], videos_kwargs=videos_kwargs, return_tensors="pt")
        if audio is not None:
            kw.update(audio=[audio], load_audio_from_video=True, audio_from_video_indices=[0])
            kw["audio_kwargs"] = dict(sampling_rate=sample_rate)
        return processor(**kw)

    @staticmethod
    def generate_kwargs(has_audio: bool) -> dict:
        return {"use_audio_in_video": bool(has_audio)}
