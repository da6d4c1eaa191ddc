"""Every checkpoint the engine writes carries the processor files vLLM and AutoProcessor read.

init-model writes them for its family; SFT and GRPO copy them from the folder their model came
from into every `checkpoints/step-N/model` and `final/`, byte for byte.
"""

import json

import pytest
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

from videorft.engine.models.processor_files import CHAT_TEMPLATE_FILE, PROCESSOR_FILES, VIDEO_PROCESSOR_FILE

pytestmark = pytest.mark.slow


def _checkpoint_folders(base_model, sft_run, grpo_run) -> dict:
    folders = {"init-model": base_model}
    for stage, run in (("sft", sft_run), ("grpo", grpo_run)):
        steps = sorted(p for p in (run / "checkpoints").glob("step-*") if p.is_dir())
        assert steps, f"{run} kept no step checkpoints"
        folders.update({f"{stage} {step.name}": step / "model" for step in steps})
        folders[f"{stage} final"] = run / "final"
    return folders


def test_every_checkpoint_kind_has_loadable_processor_files(base_model, sft_run, grpo_run):
    folders = _checkpoint_folders(base_model, sft_run, grpo_run)
    assert len(folders) >= 5
    for kind, folder in folders.items():
        missing = [name for name in PROCESSOR_FILES if not (folder / name).is_file()]
        assert not missing, f"{kind} ({folder}) lacks {missing}"
        for name in PROCESSOR_FILES:
            assert (folder / name).read_bytes() == (base_model / name).read_bytes(), f"{kind}: {name} differs"
        vision = AutoConfig.from_pretrained(folder).vision_config
        image = AutoImageProcessor.from_pretrained(folder)
        video = json.loads((folder / VIDEO_PROCESSOR_FILE).read_text())
        for proc in (image, video):
            get = proc.get if isinstance(proc, dict) else lambda key, p=proc: getattr(p, key)
            assert (get("patch_size"), get("merge_size"), get("temporal_patch_size")) == (
                vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size), kind
        template = json.loads((folder / CHAT_TEMPLATE_FILE).read_text())["chat_template"]
        assert template == AutoTokenizer.from_pretrained(folder).chat_template, kind
