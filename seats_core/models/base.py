"""What every family adapter offers: standard names for one loaded thinker's parts, calls and constants.

The core (attach, measure, pipeline, analysis, bench) speaks only this interface; each family file maps it onto
its transformers classes. What the Qwen-Omni thinkers share (the `model.language_model.layers` nesting, the
decoder-layer kwargs, the dynamic cache, RoPE in transformers' rotate-half convention) is implemented here once;
a family overrides what differs. A transformers upgrade that moves any of these touches the family files only.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import transformers

from ..method import Recipe
from .hooks import Hooks

# Decoder-layer kwargs a drop must slice along the sequence axis (transformers 5.x names).
KW_HIDDEN = "hidden_states"
KW_MASK = "attention_mask"
KW_ROPE = "position_embeddings"
KW_POS = "position_ids"
KW_CACHE = "past_key_values"
# Frame budget in LLM tokens per frame pair: the paper's evaluation setting (min_pixels 128*28*28, max 144*28*28).
PAPER_FRAME_TOKENS = (128, 144)
MEL_FRAMES_PER_SECOND = 100  # Whisper features: 16 kHz audio, hop 160 (both families' feature extractor)


def media_token_ids(config) -> dict[str, int]:
    """The special ids a media block is built from, by role, from a thinker config."""
    c = config
    return dict(
        vision_bos=c.vision_start_token_id,
        vision_eos=c.vision_end_token_id,
        audio_bos=c.audio_start_token_id,
        audio_eos=c.audio_end_token_id,
        video=c.video_token_id,
        audio=c.audio_token_id,
    )


@dataclass(frozen=True)
class TokenIds:
    """The placeholder token ids of a thinker's media (from its config)."""

    video: int
    audio: int
    image: int


class UnsupportedModel(RuntimeError):
    pass


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., S, d) with cos/sin broadcastable to it (transformers' rotate-half convention)."""
    return x * cos + _rotate_half(x) * sin


def token_block_px(vision_config) -> int:
    """Pixels per side of one LLM video token: the vision patch times the spatial merge."""
    return int(vision_config.patch_size * vision_config.spatial_merge_size)


@dataclass(frozen=True)
class MediaLayout:
    """How a family lays out one clip's tokens, read from its configs (the processor's rules).

    positions_per_second: M-RoPE temporal positions per second (`position_id_per_seconds`);
    audio_tokens_per_second: audio tokens the encoder makes per second of sound;
    seconds_per_chunk: video and audio interleave in chunks of this many seconds (None: per temporal grid);
    token_block_px: pixels per side of one LLM video token (patch x merge);
    temporal_patch: frames per temporal grid; audio_pool: encoder rows per audio token (stride of the pooling);
    spatial_merge: merge size per side (merge**2 patches per LLM token).
    """

    positions_per_second: float
    audio_tokens_per_second: float
    seconds_per_chunk: float | None
    token_block_px: int
    temporal_patch: int
    audio_pool: int
    spatial_merge: int

    def seconds_per_window(self, seconds_per_grid: float) -> float:
        """Length of one interleave chunk (the layout's window) for a video with this seconds-per-grid."""
        return self.seconds_per_chunk if self.seconds_per_chunk is not None else seconds_per_grid


class FamilyAdapter:
    """Views of one loaded Qwen-Omni-style thinker. Subclasses set the class attributes and override what differs."""

    family: str = ""  # registry key of the family (e.g. "qwen2_5_omni")
    display_name: str = ""
    model_types: tuple[str, ...] = ()  # thinker config `model_type`s this adapter handles
    checkpoint_types: tuple[str, ...] = ()  # `model_type`s of full checkpoints whose thinker it handles
    name_tags: tuple[str, ...] = ()  # lower-case fragments of hub ids of this family
    processor_class_name: str = ""
    thinker_class_name: str = ""
    paper: Recipe  # the family's published SEATS constants (drop layers, presets, temperature, ...)
    has_deepstack: bool = False

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
                f"{type(thinker).__name__} does not have the {self.display_name} thinker layout this version of "
                f"seats_core expects (transformers {transformers.__version__}): {e}. Load the thinker alone "
                f"({self.thinker_class_name})."
            ) from e

    # ---- classes (for building thinkers from a config, e.g. random-weight benchmarks) ------------------
    @classmethod
    def thinker_class(cls):
        return getattr(transformers, cls.thinker_class_name)

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

    @property
    def media_layout(self) -> MediaLayout:
        vc = self.config.vision_config
        return MediaLayout(
            positions_per_second=float(self.config.position_id_per_seconds),
            audio_tokens_per_second=self.audio_output_length(MEL_FRAMES_PER_SECOND),
            seconds_per_chunk=self._seconds_per_chunk(),
            token_block_px=token_block_px(vc),
            temporal_patch=int(vc.temporal_patch_size),
            audio_pool=self.audio_pool,
            spatial_merge=int(vc.spatial_merge_size),
        )

    audio_pool: int = 1  # encoder rows per audio token (pooling stride after the audio encoder)

    def _seconds_per_chunk(self) -> float | None:
        return None

    def layout_kwargs(self, seconds_per_grid: float) -> dict:
        """Keyword arguments of `layout.build_layout` for this family (everything but ids, grid and spg)."""
        m = self.media_layout
        return dict(
            spatial_merge_size=m.spatial_merge,
            audio_tokens_per_second=m.audio_tokens_per_second,
            positions_per_second=m.positions_per_second,
            seconds_per_window=m.seconds_per_window(seconds_per_grid),
        )

    @property
    def recipe(self) -> Recipe:
        """The family's paper constants for this thinker's depth (the published layers at the published depth,
        else scaled from its depth fractions; `derived` says which)."""
        return self.paper.for_depth(self.num_layers)

    @property
    def presets(self) -> dict:
        return self.paper.presets

    def stage1_video_grids(self, seconds_per_grid: float) -> int:
        """Temporal grids per Stage-I importance window of the video (spec §1: 2 temporal grids)."""
        return 2

    @staticmethod
    def frame_budget(config, frame_tokens: tuple[int, int] | None = None) -> dict:
        """MediaConfig fields (factor, min_pixels, max_pixels) of a model's frame budget, from its thinker config
        alone (no weights needed): the one place a model's frame size is decided, for named miniatures and any
        checkpoint alike (`Engine.media`, and the explorer before a model is loaded, both come here).

        frame_tokens: (min, max) LLM tokens per frame pair; None = the paper's 128-144 (SEATS_SPEC §7). A built-in
        miniature names its own in the models table (loader.BUILTINS). Pixels are in the family's token block
        (patch x merge: 28 px Qwen2.5, 32 px Qwen3).
        """
        lo, hi = frame_tokens or PAPER_FRAME_TOKENS
        block = token_block_px(config.vision_config)
        return dict(factor=block, min_pixels=int(lo) * block * block, max_pixels=int(hi) * block * block)

    def media_budget(self, frame_tokens: tuple[int, int] | None = None) -> dict:
        """`frame_budget` of this thinker."""
        return self.frame_budget(self.config, frame_tokens)

    # thinker-config fields holding special-token ids (remapped when the vocabulary shrinks)
    special_id_fields: tuple[str, ...] = (
        "audio_token_id",
        "image_token_id",
        "video_token_id",
        "audio_start_token_id",
        "audio_end_token_id",
        "vision_start_token_id",
        "vision_end_token_id",
    )

    # ---- thinker-call kwargs ------------------------------------------------------------------------------
    float_input_names = ("pixel_values_videos", "input_features")  # processor outputs cast to the model dtype

    @staticmethod
    def call_input_ids(kwargs: dict):
        return kwargs.get("input_ids")

    @staticmethod
    def call_cache(kwargs: dict):
        return kwargs.get(KW_CACHE)

    @staticmethod
    def call_video_grid(kwargs: dict):
        return kwargs.get("video_grid_thw")

    @staticmethod
    def call_seconds_per_grid(kwargs: dict) -> float | None:
        spg = kwargs.get("video_second_per_grid")
        return float(spg.reshape(-1)[0]) if spg is not None else None

    @staticmethod
    def inputs_seconds_per_grid(inputs: dict) -> float:
        """Seconds per temporal grid of processor inputs holding one video."""
        return float(inputs["video_second_per_grid"].reshape(-1)[0])

    @staticmethod
    def call_mask(kwargs: dict):
        return kwargs.get(KW_MASK)

    @staticmethod
    def with_mask(kwargs: dict, mask) -> dict:
        return {**kwargs, KW_MASK: mask}

    @staticmethod
    def visual_grid(args: tuple, kwargs: dict):
        """grid_thw of a call to the vision encoder."""
        return kwargs.get("grid_thw", args[1] if len(args) > 1 else None)

    @staticmethod
    def cache_seq_length(cache) -> int:
        return cache.get_seq_length() if cache is not None else 0

    @staticmethod
    def is_prefill_call(kwargs: dict) -> bool:
        """A thinker call that starts a prompt: several input ids and an empty (or no) cache."""
        ids, cache = kwargs.get("input_ids"), kwargs.get(KW_CACHE)
        return ids is not None and ids.shape[-1] > 1 and (cache is None or cache.get_seq_length() == 0)

    @staticmethod
    def is_prefill_llm_call(kwargs: dict) -> bool:
        emb = kwargs.get("inputs_embeds")
        return emb is not None and emb.shape[1] > 1

    # ---- the hook before the decoder (DeepStack and the like) --------------------------------------------
    def take_decoder_extras(self, kwargs: dict) -> tuple[dict, dict | None]:
        """At the text model's call: remove per-layer injections the hooks must apply themselves.

        Returns the kwargs to call with and the extras ({"embeds": [(Nv, D) per injection], "mask": (1, S) bool})
        or None. Families without injections return (kwargs, None).
        """
        return kwargs, None

    # ---- decoder layer calls ------------------------------------------------------------------------------
    @staticmethod
    def split_layer_call(args: tuple, kwargs: dict) -> torch.Tensor:
        return args[0] if args else kwargs[KW_HIDDEN]

    @staticmethod
    def join_layer_call(args: tuple, kwargs: dict, hidden: torch.Tensor) -> tuple[tuple, dict]:
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, KW_HIDDEN: hidden}

    @staticmethod
    def slice_layer_kwargs(kwargs: dict, alive: torch.Tensor) -> dict:
        """Decoder-layer kwargs restricted to the prompt positions `alive` (sorted, long) during a prefill."""
        kwargs = dict(kwargs)
        cos, sin = kwargs[KW_ROPE]  # (1, S, d) each
        kwargs[KW_ROPE] = (cos[:, alive], sin[:, alive])  # (1, S_alive, d)
        if isinstance(kwargs.get(KW_POS), torch.Tensor):
            kwargs[KW_POS] = kwargs[KW_POS][..., alive]  # (..., S_alive)
        mask = kwargs.get(KW_MASK)
        if isinstance(mask, torch.Tensor):
            kwargs[KW_MASK] = mask[..., alive, :][..., alive]  # (B, 1, S_alive, S_alive)
        return kwargs

    @staticmethod
    def layer_rope(kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return kwargs[KW_ROPE]

    @staticmethod
    def layer_cache(kwargs: dict):
        return kwargs.get(KW_CACHE)

    def _q(self, attn, x: torch.Tensor) -> torch.Tensor:
        """Queries (B, H, S, d) before RoPE from the normed input x (B, S, D)."""
        B, S = x.shape[:2]
        return attn.q_proj(x).view(B, S, -1, attn.head_dim).transpose(1, 2)

    def _k(self, attn, x: torch.Tensor) -> torch.Tensor:
        """Keys (B, H_kv, S, d) before RoPE from the normed input x (B, S, D)."""
        B, S = x.shape[:2]
        return attn.k_proj(x).view(B, S, -1, attn.head_dim).transpose(1, 2)

    def query_key(self, layer_idx: int, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """Re-apply layer `layer_idx`'s input norm and q/k projections (+ M-RoPE) to `hidden` (1, S, D).

        Returns q of the last position (H, d) and k of all positions (H_kv, S, d), both after RoPE.
        """
        layer = self.layers[layer_idx]
        attn = layer.self_attn
        x = layer.input_layernorm(hidden)  # (1, S, D)
        q = self._q(attn, x[:, -1:])  # (1, H, 1, d)
        k = self._k(attn, x)  # (1, H_kv, S, d)
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
        x = layer.input_layernorm(hidden)  # (1, S, D)
        q = self._q(attn, x[:, rows])  # (1, H, R, d)
        k = self._k(attn, x)  # (1, H_kv, S, d)
        q = apply_rope(q, cos[:, rows].unsqueeze(1), sin[:, rows].unsqueeze(1))
        k = apply_rope(k, cos.unsqueeze(1), sin.unsqueeze(1))
        k = k[0].repeat_interleave(q.shape[1] // k.shape[1], dim=0)  # (H, S, d)
        return q[0], k, attn.scaling

    def run_layers(
        self,
        hidden: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        start: int,
        stop: int | None = None,
        inject=None,
    ) -> torch.Tensor:
        """Run decoder layers start..stop-1 on `hidden` (1, S, D) alone: causal among these S tokens, no cache.

        cos/sin (1, S, d) are the RoPE tables of exactly these tokens (rows of the full prompt's tables, so
        kept tokens keep their original positions). SDPA / flash use their causal path (mask None); eager gets
        an explicit additive causal mask. `inject(i, hidden) -> hidden`, if given, runs after each layer i (the
        family's per-layer injections, e.g. DeepStack). Returns the last layer's output (1, S, D).
        """
        S = hidden.shape[1]
        mask = None
        if self.attn_implementation == "eager":
            blocked = torch.ones(S, S, dtype=torch.bool, device=hidden.device).triu(1)  # (S, S) future keys
            mask = torch.zeros(1, 1, S, S, dtype=hidden.dtype, device=hidden.device)
            mask = mask.masked_fill(blocked, torch.finfo(hidden.dtype).min)
        stop = self.num_layers if stop is None else stop
        for i in range(start, stop):
            hidden = self.layers[i](
                hidden, **{KW_MASK: mask, KW_ROPE: (cos, sin), KW_POS: None, KW_CACHE: None}, use_cache=False
            )
            if inject is not None:
                hidden = inject(i, hidden)
        return hidden

    def last_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm + LM head on the last position of a last-layer output (1, S, D) -> logits (V,)."""
        return self.thinker.lm_head(self.text_model.norm(hidden[:, -1:]))[0, 0]

    @contextlib.contextmanager
    def last_position_logits(self):
        """While active, the thinker's LM head sees only the last position (logits (B, 1, V)), like
        `logits_to_keep=1`: a prefill forward then costs D*V for the head instead of S*D*V."""
        with Hooks() as hooks:
            hooks.pre(self.thinker.lm_head, lambda module, args: (args[0][:, -1:],), with_kwargs=False)
            yield

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

    def prefill(self, inputs: dict, has_audio: bool = True, **kw):
        """One prefill forward of the thinker as generate() runs it (vision encoder first)."""
        return self.thinker(**self.encode_video_first(inputs), **self.generate_kwargs(has_audio), **kw)

    @property
    def media_delimiter_ids(self) -> tuple[int, ...]:
        """Ids of the text-modality markers around a media block (vision/audio bos and eos)."""
        c = self.config
        names = ("vision_start_token_id", "vision_end_token_id", "audio_start_token_id", "audio_end_token_id")
        return tuple(int(getattr(c, n)) for n in names if getattr(c, n, None) is not None)

    def media_token_ids(self) -> dict[str, int]:
        """The special ids a media block is built from, by role."""
        return media_token_ids(self.config)

    def audio_output_length(self, mel_frames: int) -> int:
        """Audio tokens the audio encoder makes from `mel_frames` feature frames."""
        raise NotImplementedError

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
        layer.keys = layer.keys.index_select(2, keep)  # (B, H_kv, L_kept, d)
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
        """q, k (H, N, d) of the last vision block from its input (encoder row order), and the softmax scale."""
        raise NotImplementedError

    def vision_raster_order(self, grid_thw: torch.Tensor) -> torch.Tensor | None:
        """Index mapping the encoder's merge units to (t, h, w) raster order, or None when already in order."""
        return None

    def audio_qk(self, layer_args: tuple, layer_kwargs: dict):
        """q, k (H, N, d) of the last audio layer from its input, its scale and attention chunk bounds (C+1,)."""
        layer = self.audio_last_layer
        h = layer_args[0] if layer_args else layer_kwargs["hidden_states"]  # (N, C)
        cu = layer_kwargs["cu_seqlens"] if "cu_seqlens" in layer_kwargs else layer_args[1]
        attn = layer.self_attn
        x = layer.self_attn_layer_norm(h)
        N = x.shape[0]
        q = attn.q_proj(x).reshape(N, attn.num_heads, -1).float().transpose(0, 1)  # (H, N, d)
        k = attn.k_proj(x).reshape(N, attn.num_heads, -1).float().transpose(0, 1)
        return q, k, attn.scaling, cu

    # ---- fast encoder -----------------------------------------------------------------------------------
    def fast_encoder(self):
        """Context manager that speeds the vision encoder up with identical outputs, or a null context."""
        return contextlib.nullcontext()

    @property
    def has_fast_encoder(self) -> bool:
        return False

    # ---- processor ------------------------------------------------------------------------------------
    @staticmethod
    def processor_inputs(processor, text: str, frames, fps: float, audio, sample_rate: int):
        """Run the stock processor on decoded media (frames (T,H,W,3) uint8 already resized, audio or None)."""
        # Frames arrive sampled and resized by seats_core.run.media (qwen-omni-utils rules); the processor only patchifies.
        videos_kwargs = dict(fps=fps, do_resize=False, do_sample_frames=False, cap_pixels_per_frame=True)
        kw = dict(text=text, videos=[frames], videos_kwargs=videos_kwargs, return_tensors="pt")
        if audio is not None:
            kw.update(audio=[audio], load_audio_from_video=True, audio_from_video_indices=[0])
            kw["audio_kwargs"] = dict(sampling_rate=sample_rate)
        return processor(**kw)

    @staticmethod
    def generate_kwargs(has_audio: bool) -> dict:
        return {"use_audio_in_video": bool(has_audio)}
