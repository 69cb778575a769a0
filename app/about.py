"""The About tab: what SEATS does, in plain language, with an inline SVG diagram of the three stages."""

from __future__ import annotations

from seats_core.models.family import Qwen25OmniAdapter
from seats_core.prune.methods import METHODS_TABLE

_PAPER = Qwen25OmniAdapter.paper  # Qwen2.5-Omni-7B, the model the paper's schedule was set on
PAPER_DEPTH = _PAPER.num_layers
PAPER_DROPS, PAPER_LATE = (
    _PAPER.drop_layers,
    _PAPER.late_layer,
)  # Stage II "after layer d" (1-based), Stage III
_DROPS = ", ".join(str(d) for d in PAPER_DROPS)
# one line per method of the registry: the baseline choice lists the same methods
_BASELINES = "\n".join(f"- **{m.label}**: {m.about}." for m in METHODS_TABLE.values() if m.name != "seats")

ABOUT_MD = f"""
## What SEATS does

A video-with-sound model such as Qwen2.5-Omni turns a 15-second clip into thousands of tokens: every 28x28 pixel
patch of every pair of frames becomes one **video token**, and every 40 ms of sound becomes one **audio token**.
The language model then runs all of them, together with the few dozen tokens of your question, through each of its
{PAPER_DEPTH} layers. Most of that work is spent on tokens the answer never needs.

**SEATS** (stage-adaptive token selection) removes tokens in three stages, at the places where the model itself
shows it can do without them:

1. **Stage I, before the language model.** Inside every 2-second window, keep a small, *diverse* set of video and
   audio tokens: the encoders tell us which tokens drew attention, and a greedy max-min rule picks tokens that are
   both important and unlike the ones already kept (no two near-identical sky patches).
2. **Stage II, in the middle layers.** At a few drop points (after layers {_DROPS} of {PAPER_DEPTH}) the last token of the
   question "looks" at every remaining token; the least relevant ones are dropped, first a few, then many. Windows
   the question cares about keep more of their tokens.
3. **Stage III, late layers.** By then the text has absorbed what it needs from the clip (the *Dependency* tab
   shows this for your clip), so every remaining video and audio token is removed and the last layers run on text
   alone.

The **retention** R is the fraction of video and audio tokens kept, averaged over all layers. At R10 (6% of video,
35% of audio) the paper reports about 96% of the full model's accuracy with about 9x fewer prefill FLOPs. Expect a
smaller factor here on short clips and on the miniature: the question's text tokens are never pruned, so the fewer
video and audio tokens a clip has, the larger the share of the work that stays (each run's Speed tab says by how
much, from its own token counts).

## The baselines

{_BASELINES}

## How to read this explorer

- **Answers** compares the full model, the pruned run and a baseline on the same clip and question: the raw
  answer, the option read from it, and ✓ / ✗ where the correct option is known.
- **Layers**: move the slider through the layers (drag, arrow keys or type a number); dimmed patches are gone,
  outlined ones are still processed, coloured by the score that chose them. The audio strip does the same for
  the sound tokens (each spans the record's own duration: 40 ms on Qwen2.5-Omni). Click a patch to inspect it.
- **Flow**: how many tokens each layer processes, and where they are dropped.
- **Dependency**: knock the clip's tokens out from each layer on, and see from where the answer no longer needs
  them.
- **Speed**: analytic FLOPs and measured time, split by stage. Fewer tokens does not mean proportionally less
  time: the encoders and fixed costs do not shrink.

The default model on a CPU is a *miniature*: the real Qwen2.5-Omni architecture ({PAPER_DEPTH} layers) with tiny widths,
trained on generated scenes (one coloured shape per second moving left, right, up or down; low and high tones) with
four-option questions. It answers those (89.6% of 500 held-out questions with all tokens; chance is 25%) and nothing else, so use
**New generated scene** or the examples: the page names the correct option, and the attention maps and knockout
curves show a model that really combines sound and picture. A Space with a GPU serves the real 7B (thinker only, in
bf16); without a GPU or without the hub it serves the miniature and says so at the top of the page. One model serves
every visitor of a Space; the `SEATS_MODEL` variable picks it.
"""

STAGE_SVG = f"""
<svg viewBox="0 0 900 230" xmlns="http://www.w3.org/2000/svg" role="img"
     aria-label="SEATS: encoders, Stage I selection, Stage II drops, Stage III text only"
     style="max-width:900px;width:100%;font-family:system-ui,sans-serif;font-size:13px">
  <defs><marker id="arr" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">
    <path d="M0,0 L8,4 L0,8 z" fill="#64748b"/></marker></defs>
  <rect x="10" y="40" width="120" height="60" rx="8" fill="#dbeafe" stroke="#3b82f6"/>
  <text x="70" y="65" text-anchor="middle">video frames</text>
  <text x="70" y="83" text-anchor="middle">vision encoder</text>
  <rect x="10" y="120" width="120" height="60" rx="8" fill="#fef3c7" stroke="#f59e0b"/>
  <text x="70" y="145" text-anchor="middle">sound</text>
  <text x="70" y="163" text-anchor="middle">audio encoder</text>
  <line x1="130" y1="70" x2="175" y2="105" stroke="#64748b" marker-end="url(#arr)"/>
  <line x1="130" y1="150" x2="175" y2="115" stroke="#64748b" marker-end="url(#arr)"/>
  <rect x="180" y="70" width="130" height="80" rx="8" fill="#dcfce7" stroke="#22c55e"/>
  <text x="245" y="98" text-anchor="middle" font-weight="bold">Stage I</text>
  <text x="245" y="116" text-anchor="middle">diverse + important</text>
  <text x="245" y="133" text-anchor="middle">per 2 s window</text>
  <line x1="310" y1="110" x2="345" y2="110" stroke="#64748b" marker-end="url(#arr)"/>
  <g>
    <rect x="350" y="30" width="530" height="160" rx="8" fill="none" stroke="#94a3b8"/>
    <text x="360" y="22">language model layers 1 ... {PAPER_DEPTH}</text>
    <rect x="360" y="70" width="250" height="80" fill="#e0e7ff"/>
    <text x="485" y="105" text-anchor="middle">layers 1-{PAPER_DROPS[0]}: all kept tokens</text>
    <text x="485" y="123" text-anchor="middle">+ your question</text>
    <rect x="615" y="76" width="110" height="70" fill="#f3e8ff" stroke="#a855f7"/>
    <text x="670" y="96" text-anchor="middle" font-weight="bold">Stage II</text>
    <text x="670" y="114" text-anchor="middle">drops after</text>
    <text x="670" y="132" text-anchor="middle">{" / ".join(str(d) for d in PAPER_DROPS)}</text>
    <rect x="730" y="96" width="140" height="28" fill="#fee2e2" stroke="#ef4444"/>
    <text x="800" y="90" text-anchor="middle" font-weight="bold">Stage III</text>
    <text x="800" y="115" text-anchor="middle">text only from {PAPER_LATE}</text>
    <polygon points="360,160 610,160 725,172 870,178 870,182 360,182" fill="#94a3b8" opacity="0.5"/>
    <text x="365" y="208">tokens processed per layer (shrinks with each stage)</text>
  </g>
</svg>
"""
