"""The `world` backend: the synthetic world's own captioner, reasoner and reviser.

It gives the curation pipeline real work on a CPU without any model: the representation is what
a perfect captioner would write from the clip's scene graph (scenes/<id>.json under the media
root), the reasoner writes its chain from that representation alone and errs at a configured rate,
and the reviser fixes what conflicts with the scene graph. Answers are text, exactly as a server's
would be, so parsing, validation, caching and filtering are the same as with a real model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from videorft.engine.config import CurateWorldConfig
from videorft.engine.curate.backends.base import Backend
from videorft.engine.curate.backends.world_caption import world_representation
from videorft.engine.curate.backends.world_chain import draws, reason_chain, revise_chain
from videorft.engine.curate.requests import BackendError, ChatRequest, Completion
from videorft.engine.rewards import think_text
from videorft.loaders.synth.scene import Scene


class WorldBackend(Backend):
    """Answers one stage's requests from the synthetic world's scene graphs."""

    name = "world"

    def __init__(self, stage: str, media_root: str, world: CurateWorldConfig):
        self.stage = stage
        self.media_root = Path(media_root)
        self.world = world

    def _scene(self, request: ChatRequest) -> Scene:
        path = self.media_root / "scenes" / f"{Path(request.record.path).stem}.json"
        if not path.is_file():
            raise BackendError(f"world backend: {path} does not exist; is data.media_root the synthetic world?")
        return Scene.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def _answer(self, request: ChatRequest) -> str:
        if self.stage == "represent":
            frames = request.frames
            return json.dumps(world_representation(self._scene(request), frames.indices, frames.timestamps))
        if self.stage == "reason":
            rng = draws(self.world.seed, str(request.record.problem_id))
            return reason_chain(request.inputs["representation"], request.record.problem, request.record.options,
                                request.record.problem_type, rng, self.world.mistake_rate, self.world.leak_rate,
                                self.world.style)
        think = think_text(request.inputs["cot"]) or request.inputs["cot"]
        return f"<think>{revise_chain(self._scene(request), think)}</think>"

    async def complete(self, request: ChatRequest) -> Completion:
        start = time.perf_counter()
        text = self._answer(request)
        return Completion(text=text, tokens_in=sum(len(str(m["content"]).split()) for m in request.text_messages()),
                          tokens_out=len(text.split()), latency_s=time.perf_counter() - start)
