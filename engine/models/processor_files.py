"""The processor files every checkpoint carries, so vLLM and AutoProcessor can load it as is.

A Qwen-VL checkpoint is more than weights and a tokenizer: `LLM(model=dir)` and
`AutoProcessor.from_pretrained(dir)` also read the image processor (preprocessor_config.json),
the video processor (video_preprocessor_config.json) and the processor's chat template
(chat_template.json). When the model was loaded from a folder that has them, they are copied
(from the legacy files, or from the nested sections of transformers 5's processor_config.json);
otherwise they are written for the model's family with its vision geometry (patch, merge and
temporal patch sizes) and the pixel bounds and normalisation of the released checkpoints.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

IMAGE_PROCESSOR_FILE = "preprocessor_config.json"
VIDEO_PROCESSOR_FILE = "video_preprocessor_config.json"
CHAT_TEMPLATE_FILE = "chat_template.json"
PROCESSOR_FILES = (IMAGE_PROCESSOR_FILE, VIDEO_PROCESSOR_FILE, CHAT_TEMPLATE_FILE)
"""What every checkpoint folder the engine writes holds besides weights and tokenizer."""
NESTED_PROCESSOR_FILE = "processor_config.json"
"""transformers 5's single-file layout: {"image_processor": {...}, "video_processor": {...}, ...}."""

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

FAMILIES = {
    # pixel bounds are in units of factor**2, factor = patch_size * merge_size (28 or 32)
    "qwen2_vl": {"processor": "Qwen2VLProcessor", "video_processor": "Qwen2VLVideoProcessor",
                 "mean": CLIP_MEAN, "std": CLIP_STD, "image_area": (4, 16384), "video_area": (128, 768)},
    "qwen2_5_vl": {"processor": "Qwen2_5_VLProcessor", "video_processor": "Qwen2VLVideoProcessor",
                   "mean": CLIP_MEAN, "std": CLIP_STD, "image_area": (4, 16384), "video_area": (128, 768)},
    "qwen3_vl": {"processor": "Qwen3VLProcessor", "video_processor": "Qwen3VLVideoProcessor",
                 "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "image_area": (64, 16384),
                 "video_area": (4, 24576)},
}
"""Per model_type: processor classes, normalisation and pixel bounds of the released checkpoints."""


def _family(config) -> dict:
    kind = getattr(config, "model_type", None)
    if kind not in FAMILIES:
        raise ValueError(f"no processor files known for model_type {kind!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[kind]


def _geometry(config) -> dict:
    vision = config.vision_config
    return {"patch_size": int(vision.patch_size), "temporal_patch_size": int(vision.temporal_patch_size),
            "merge_size": int(vision.spatial_merge_size)}


def image_processor_config(config) -> dict:
    """preprocessor_config.json for `config` (keys of the released checkpoints of its family)."""
    fam, geo = _family(config), _geometry(config)
    factor = geo["patch_size"] * geo["merge_size"]
    lo, hi = (a * factor * factor for a in fam["image_area"])
    out = {**geo, "image_mean": fam["mean"], "image_std": fam["std"], "image_processor_type": "Qwen2VLImageProcessor",
           "processor_class": fam["processor"]}
    if config.model_type == "qwen3_vl":
        return {"size": {"longest_edge": hi, "shortest_edge": lo}, **out}
    return {"min_pixels": lo, "max_pixels": hi, **out}


def video_processor_config(config) -> dict:
    """video_preprocessor_config.json for `config`; the engine hands vLLM frames it already sampled."""
    fam, geo = _family(config), _geometry(config)
    factor = geo["patch_size"] * geo["merge_size"]
    lo, hi = (a * factor * factor for a in fam["video_area"])
    out = {"size": {"longest_edge": hi, "shortest_edge": lo}, **geo, "image_mean": fam["mean"],
           "image_std": fam["std"], "do_sample_frames": False, "min_frames": 4, "max_frames": 768,
           "video_processor_type": fam["video_processor"], "processor_class": fam["processor"]}
    if config.model_type == "qwen3_vl":
        out.update(do_sample_frames=True, fps=2.0)          # the released Qwen3-VL default
    return out


def _nested_sections(source: Path | None) -> dict:
    path = source / NESTED_PROCESSOR_FILE if source is not None else None
    if path is None or not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    nested = {}
    for section, name in (("image_processor", IMAGE_PROCESSOR_FILE), ("video_processor", VIDEO_PROCESSOR_FILE)):
        if isinstance(data.get(section), dict):
            nested[name] = {**data[section], "processor_class": data.get("processor_class")}
    return nested


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_processor_files(dest: str | Path, config, tokenizer, source: str | Path | None = None) -> dict[str, str]:
    """Give the checkpoint folder `dest` the files of PROCESSOR_FILES; returns {file: "copied" | "written"}.

    config: the model's transformers config. tokenizer: the checkpoint's tokenizer (its chat template
    becomes the processor's unless the source has one). source: the folder the model was loaded from
    (model.name_or_path), or None for a model built from a config.
    """
    dest = Path(dest)
    src = Path(source) if source and Path(source).is_dir() else None
    nested = _nested_sections(src)
    made = {IMAGE_PROCESSOR_FILE: image_processor_config, VIDEO_PROCESSOR_FILE: video_processor_config}
    done = {}
    for name in PROCESSOR_FILES:
        if src is not None and (src / name).is_file():
            if (src / name).resolve() != (dest / name).resolve():
                shutil.copyfile(src / name, dest / name)
            done[name] = "copied"
        elif name in nested:
            _write_json(dest / name, nested[name])
            done[name] = "copied"
        elif name == CHAT_TEMPLATE_FILE:
            if not getattr(tokenizer, "chat_template", None):
                raise ValueError(f"{dest}: the tokenizer has no chat template to give the processor")
            _write_json(dest / name, {"chat_template": tokenizer.chat_template})
            done[name] = "written"
        else:
            _write_json(dest / name, made[name](config))
            done[name] = "written"
    return done
