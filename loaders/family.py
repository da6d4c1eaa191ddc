"""Everything that differs between the Qwen-VL model families, in one record per family.

Qwen2-VL, Qwen2.5-VL and Qwen3-VL share the engine's whole data path (ChatML prompts, patch rows
from `qwen_preprocess`, `mm_token_type_ids`, 3-D M-RoPE) and differ in a handful of facts:

  * patch geometry (14-pixel patches; 16 for Qwen3-VL),
  * how a video placeholder expands (one block of pad tokens, or for Qwen3-VL one
    `<t seconds>` block per temporal patch),
  * which vision inputs the forward takes (only Qwen2.5-VL takes `second_per_grid_ts`; Qwen3-VL
    reads the time from its text instead),
  * the transformers config class of a tiny model and its vision sub-config.

`family_of(model.config)` builds the record once from a transformers config; the data path,
the policy, packing, rollouts and the tiny-model factory ask it instead of branching on names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

from videorft.loaders.qwen_inputs import IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START, video_token_count
from videorft.loaders.qwen_preprocess import PatchSpec

FamilyName = Literal["qwen2_5_vl", "qwen2_vl", "qwen3_vl"]
"""Model families the engine trains (transformers' `model_type` of the checkpoint)."""
FAMILY_NAMES: tuple[str, ...] = FamilyName.__args__  # type: ignore[attr-defined]

SECONDS_KEY = "second_per_grid_ts"
"""Seconds per temporal patch of each video: a forward input of Qwen2.5-VL only."""


@dataclass(frozen=True)
class ModelFamily:
    """The facts of one Qwen-VL family that the engine's code paths depend on."""

    name: str
    """transformers' model_type: "qwen2_vl", "qwen2_5_vl" or "qwen3_vl"."""
    spec: PatchSpec = field(default_factory=PatchSpec)
    """Patch geometry of the vision tower (from the model's vision_config)."""
    takes_seconds: bool = False
    """The forward (and get_rope_index) take `second_per_grid_ts` (Qwen2.5-VL)."""
    timed_video_blocks: bool = False
    """Each temporal patch gets its own `<t seconds>` + vision block in the text (Qwen3-VL)."""
    _tiny: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ prompts

    def expand_video(self, text: str, grids: Sequence[Sequence[int]],
                     timestamps: Sequence[Sequence[float]] | None = None) -> str:
        """Expand the k-th `<|vision_start|><|video_pad|><|vision_end|>` block of `text` for grid k.

        grids: (gt, gh, gw) per video; timestamps: the mean time in seconds of each temporal
        patch of each video (needed by Qwen3-VL, whose text carries them).
        """
        block = f"{VISION_START}{VIDEO_PAD}{VISION_END}"
        pieces = text.split(block)
        if len(pieces) - 1 != len(grids):
            raise ValueError(f"prompt has {len(pieces) - 1} video placeholders for {len(grids)} videos")
        merge = self.spec.merge_size
        out = [pieces[0]]
        for k, grid in enumerate(grids):
            if self.timed_video_blocks:
                gt, gh, gw = (int(v) for v in grid)
                pads = VIDEO_PAD * (gh * gw // merge ** 2)
                times = timestamps[k] if timestamps is not None else [float(i) for i in range(gt)]
                out.append("".join(f"<{times[i]:.1f} seconds>{VISION_START}{pads}{VISION_END}" for i in range(gt)))
            else:
                out.append(f"{VISION_START}{VIDEO_PAD * video_token_count(grid, merge)}{VISION_END}")
            out.append(pieces[k + 1])
        return "".join(out)

    def expand_image(self, text: str, grid: Sequence[int]) -> str:
        """Expand the one image placeholder block of `text` to gt*gh*gw / merge**2 pad tokens."""
        block = f"{VISION_START}{IMAGE_PAD}{VISION_END}"
        if text.count(block) != 1:
            raise ValueError(f"prompt has {text.count(block)} image placeholders, expected 1")
        return text.replace(block, f"{VISION_START}{IMAGE_PAD * video_token_count(grid, self.spec.merge_size)}"
                                   f"{VISION_END}")

    # ------------------------------------------------------------------ model inputs

    def vision_kwargs(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """`inputs` without the keys this family's forward does not take (a copy)."""
        return {k: v for k, v in inputs.items() if self.takes_seconds or k != SECONDS_KEY}

    def rope_index(self, model) -> Callable[..., Any]:
        """The model's own `get_rope_index` (3-D M-RoPE positions of one row)."""
        for owner in (model, getattr(model, "model", None)):
            if owner is not None and hasattr(owner, "get_rope_index"):
                return owner.get_rope_index
        raise TypeError(f"{type(model).__name__} has no get_rope_index: not a {self.name} model")

    # ------------------------------------------------------------------ tiny models

    def tiny_config(self, widths: Any, special_ids: Mapping[str, int], vocab_size: int, eos_token_id: int,
                    pad_token_id: int):
        """A transformers config of this family at toy `widths` (the engine's TinyModelConfig: hidden_size,
        num_layers, num_heads, num_kv_heads, intermediate_size, vision_depth, vision_hidden_size)."""
        if self._tiny is None:
            raise ValueError(f"no tiny config is defined for {self.name}")
        head_dim = widths.hidden_size // widths.num_heads
        text = dict(vocab_size=vocab_size, hidden_size=widths.hidden_size,
                    intermediate_size=widths.intermediate_size, num_hidden_layers=widths.num_layers,
                    num_attention_heads=widths.num_heads, num_key_value_heads=widths.num_kv_heads,
                    max_position_embeddings=8192, tie_word_embeddings=False, bos_token_id=None,
                    eos_token_id=eos_token_id, pad_token_id=pad_token_id)
        rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": _mrope_section(head_dim)}
        return self._tiny(widths, text, rope, head_dim, max(1, widths.vision_hidden_size // 16), dict(special_ids))


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (time, height, width) in Qwen's 2:3:3 proportion."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def _tiny_qwen2_5_vl(w, text, rope, head_dim, vision_heads, ids):
    from transformers import Qwen2_5_VLConfig

    vision = dict(depth=w.vision_depth, hidden_size=w.vision_hidden_size, intermediate_size=2 * w.vision_hidden_size,
                  num_heads=vision_heads, out_hidden_size=w.hidden_size, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, window_size=56, fullatt_block_indexes=[w.vision_depth - 1],
                  tokens_per_second=2)
    return Qwen2_5_VLConfig(text_config={**text, "rope_parameters": rope}, vision_config=vision, **ids)


def _tiny_qwen2_vl(w, text, rope, head_dim, vision_heads, ids):
    from transformers import Qwen2VLConfig

    vision = dict(depth=w.vision_depth, embed_dim=w.vision_hidden_size, hidden_size=w.hidden_size, mlp_ratio=2,
                  num_heads=vision_heads, patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
    return Qwen2VLConfig(text_config={**text, "rope_parameters": rope}, vision_config=vision, **ids)


def _tiny_qwen3_vl(w, text, rope, head_dim, vision_heads, ids):
    from transformers import Qwen3VLConfig

    text = {**text, "head_dim": head_dim, "rope_parameters": {**rope, "mrope_interleaved": True}}
    vision = dict(depth=w.vision_depth, hidden_size=w.vision_hidden_size, intermediate_size=2 * w.vision_hidden_size,
                  num_heads=vision_heads, out_hidden_size=w.hidden_size, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, num_position_embeddings=64, deepstack_visual_indexes=[w.vision_depth - 1])
    return Qwen3VLConfig(text_config=text, vision_config=vision, **ids)


_FAMILIES: dict[str, ModelFamily] = {
    "qwen2_5_vl": ModelFamily("qwen2_5_vl", PatchSpec(14), takes_seconds=True, _tiny=_tiny_qwen2_5_vl),
    "qwen2_vl": ModelFamily("qwen2_vl", PatchSpec(14), _tiny=_tiny_qwen2_vl),
    "qwen3_vl": ModelFamily("qwen3_vl", PatchSpec(16), timed_video_blocks=True, _tiny=_tiny_qwen3_vl),
}


def family_named(name: str) -> ModelFamily:
    """The record of family `name` with that family's default patch geometry."""
    if name not in _FAMILIES:
        raise ValueError(f"model family {name!r} is not supported; choose from {list(FAMILY_NAMES)}")
    return _FAMILIES[name]


def family_of(model_config) -> ModelFamily:
    """The record of a transformers Qwen-VL config, with the patch geometry of its vision tower."""
    family = family_named(getattr(model_config, "model_type", ""))
    vision = model_config.vision_config
    spec = PatchSpec(patch_size=vision.patch_size, merge_size=vision.spatial_merge_size,
                     temporal_patch_size=vision.temporal_patch_size)
    return ModelFamily(family.name, spec, family.takes_seconds, family.timed_video_blocks, family._tiny)
