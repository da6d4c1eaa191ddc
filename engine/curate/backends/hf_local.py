"""The `hf` backend: in-process transformers generation (the CPU path; also fine on one GPU).

Text-only requests (the reasoning stage) are batched with left padding through any causal or
image-text-to-text checkpoint and its chat template. Requests that carry a video go one at a time
through the project's own Qwen-VL preprocessing (no torchvision), so a saved Qwen2/2.5/3-VL
checkpoint, such as the tiny pipeline's, can represent and revise on a CPU.
"""

from __future__ import annotations

import time

import torch

from videorft.engine.config import CurateModelConfig
from videorft.engine.config_loader import ConfigError
from videorft.engine.curate.backends.base import BatchingBackend
from videorft.engine.curate.requests import VIDEO_SLOT, ChatRequest, Completion
from videorft.loaders.family import family_of


class HFBackend(BatchingBackend):
    """Generates with a local transformers checkpoint."""

    name = "hf"

    def __init__(self, stage: str, cfg: CurateModelConfig, device: str):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

        super().__init__(cfg.concurrency)
        if not cfg.model:
            raise ConfigError(f"curate.{stage}.model: give the checkpoint folder for the hf backend")
        self.cfg, self.device = cfg, torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model)
        self.tokenizer.padding_side = "left"
        config = AutoConfig.from_pretrained(cfg.model)
        self.is_vl = hasattr(config, "vision_config")
        loader = AutoModelForImageTextToText if self.is_vl else AutoModelForCausalLM
        dtype = getattr(torch, cfg.dtype) if self.device.type == "cuda" else torch.float32
        self.model = loader.from_pretrained(cfg.model, dtype=dtype).to(self.device).eval()
        self.family = family_of(config) if self.is_vl else None

    def _gen_kwargs(self, request: ChatRequest) -> dict:
        s = request.sampling
        kwargs = {"max_new_tokens": s.max_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            kwargs.update(do_sample=False)
        return kwargs

    @torch.inference_mode()
    def generate_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        texts = [r for r in requests if r.frames is None]
        out: dict[int, Completion] = {}
        if texts:
            for r, c in zip(texts, self._text_batch(texts)):
                out[id(r)] = c
        for r in requests:
            if r.frames is not None:
                out[id(r)] = self._video_one(r)
        return [out[id(r)] for r in requests]

    def _text_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        start = time.perf_counter()
        if requests[0].sampling.seed is not None:
            torch.manual_seed(requests[0].sampling.seed)
        prompts = [self.tokenizer.apply_chat_template(r.text_messages(), tokenize=False, add_generation_prompt=True)
                   for r in requests]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        ids = self.model.generate(**enc, **self._gen_kwargs(requests[0]))          # [B, P + N]
        new = ids[:, enc["input_ids"].shape[1]:]                                     # [B, N]
        latency = time.perf_counter() - start
        return [self._completion(row, int(mask.sum()), latency) for row, mask in zip(new, enc["attention_mask"])]

    def _completion(self, new_ids: torch.Tensor, prompt_len: int, latency: float) -> Completion:
        keep = new_ids[new_ids != self.tokenizer.pad_token_id]
        text = self.tokenizer.decode(keep, skip_special_tokens=True)
        return Completion(text=text, tokens_in=prompt_len, tokens_out=int(keep.numel()), latency_s=latency)

    def _video_one(self, request: ChatRequest) -> Completion:
        from videorft.loaders.preprocess import video_inputs
        from videorft.loaders.dataset import temporal_patch_times
        from videorft.loaders.qwen_inputs import token_type_ids

        if not self.is_vl:
            raise ConfigError(f"curate.{request.stage}.model: {self.cfg.model} has no vision tower for the video")
        start = time.perf_counter()
        messages = [{"role": m["role"], "content": [{"type": "video"} if p == VIDEO_SLOT else p for p in m["content"]]
                     if isinstance(m["content"], list) else m["content"]} for m in request.messages]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        clip = request.frames.clip
        spec = self.family.spec
        vis = video_inputs(clip, None, self.cfg.max_pixels, spec=spec)
        times = [temporal_patch_times(clip.timestamps, spec.temporal_patch_size)]
        text = self.family.expand_video(text, [vis["video_grid_thw"].tolist()], times)
        ids = torch.tensor([self.tokenizer(text, add_special_tokens=False)["input_ids"]], device=self.device)  # [1, P]
        video_id = self.tokenizer.convert_tokens_to_ids("<|video_pad|>")
        image_id = self.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                  "mm_token_type_ids": token_type_ids(ids, image_id, video_id),
                  "pixel_values_videos": vis["pixel_values_videos"].to(self.device, self.model.dtype),
                  "video_grid_thw": vis["video_grid_thw"].view(1, 3).to(self.device)}
        if self.family.takes_seconds:
            inputs["second_per_grid_ts"] = torch.tensor([vis["second_per_grid_ts"]], device=self.device)
        if request.sampling.seed is not None:
            torch.manual_seed(request.sampling.seed)
        out = self.model.generate(**inputs, **self._gen_kwargs(request))           # [1, P + N]
        return self._completion(out[0, ids.shape[1]:], int(ids.shape[1]), time.perf_counter() - start)
