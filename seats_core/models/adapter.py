"""Compatibility names: `OmniAdapter(thinker)` returns the family adapter of `thinker` (see models/family)."""

from __future__ import annotations

from .family import (  # noqa: F401 -- re-exported names
    KW_CACHE,
    KW_HIDDEN,
    KW_MASK,
    KW_POS,
    KW_ROPE,
    FamilyAdapter,
    UnsupportedModel,
    apply_rope,
    get_adapter,
)


class OmniAdapter(FamilyAdapter):
    """`OmniAdapter(thinker)` is `get_adapter(thinker)`; its static helpers are the base adapter's."""

    def __new__(cls, thinker):
        return get_adapter(thinker)
