"""The synthetic world's captioner: the representation a perfect captioner would write.

Every fact comes from the clip's scene graph at the times of the frames that were sampled, in the
phrases the world's own captions use ("large red circle on the left"). Like a real captioner at
1 FPS it sees only those frames: a shape that shows up between two of them is not described.
"""

from __future__ import annotations

from typing import Any

from videorft.engine.curate.representation import clock
from videorft.loaders.synth.levels import BACKGROUND_NAME
from videorft.loaders.synth.phrases import frame_caption, motion_phrase, place_phrase, scene_story
from videorft.loaders.synth.scene import Scene

SCENE_TEXT = f"a plain {BACKGROUND_NAME} background"
"""The `scene` key element of every frame."""


def shape_name(scene: Scene, o, t: float) -> str:
    """ "large red circle": size, colour at time t, shape."""
    return f"{o.size} {scene.colour_at(o, t)} {o.shape}"


def describe_frame(scene: Scene, k: int, t: float) -> dict[str, Any]:
    """One frame's entry: timestamp, caption and key elements."""
    objects, actions, relations, features = [], [], [], []
    for o in scene.objects:
        if not scene.visible(o, scene.frame_time(k)):
            continue
        name = shape_name(scene, o, scene.frame_time(k))
        objects.append(name)
        relations.append(f"{name} {place_phrase(scene.region(*scene.position(o, scene.frame_time(k))))}")
        if o.motion != "still":
            actions.append(f"{name} {motion_phrase(o)}")
    for s in scene.signs:
        if scene.visible(s, scene.frame_time(k)):
            objects.append("sign")
            features.append(f"a sign reading {s.text}")
    caption = f"The frame shows {frame_caption(scene, k)} on {SCENE_TEXT}."
    if actions:
        caption += " " + "; ".join(a[0].upper() + a[1:] for a in actions) + "."
    return {"timestamp": clock(t), "caption": caption,
            "key_elements": {"objects": objects, "actions": actions, "scene": SCENE_TEXT,
                             "notable_features": features, "spatial_relations": relations,
                             "human_attributes": None, "potential_interactions": []}}


def world_representation(scene: Scene, indices: list[int], timestamps: list[float]) -> dict[str, Any]:
    """The full representation of the sampled frames (source frame `indices`, times `timestamps`)."""
    story = scene_story(scene) or "Nothing moves."
    return {"video_caption": f"A {scene.duration_s:g}-second clip on {SCENE_TEXT}. {story}",
            "frames": [describe_frame(scene, k, t) for k, t in zip(indices, timestamps)]}
