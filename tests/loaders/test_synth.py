"""The synthetic video world: determinism, answers re-derived from the scene graphs, pixels that
match the graphs, balanced answers, reference reasoning, config errors and the CLI stage."""

import collections
import json
import math
import re
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from videorft.loaders.config import SynthConfig
from videorft.loaders.schema import PROBLEM_TYPES
from videorft.loaders.synth.levels import COLOURS, LEVELS
from videorft.loaders.synth.world import WorldConfigError, generate_world


def _cfg(out, **kw):
    base = dict(output_dir=str(out), num_train=24, num_test=6, seed=3, width=96, height=96, fps=8,
                duration_s=4.0, difficulty="medium")
    base.update(kw)
    return SynthConfig(**base)


def _records(root, split="train"):
    return [json.loads(line) for line in (Path(root) / f"{split}.jsonl").read_text().splitlines()]


def _scene(root, rec):
    return json.loads((Path(root) / "scenes" / f"{rec['problem_id']}.json").read_text())


def _answer(rec):
    return re.fullmatch(r"<answer>(.*)</answer>", rec["solution"], re.S).group(1)


def _chosen_option(rec):
    letter = _answer(rec)
    (line,) = [o for o in rec["options"] if o.startswith(letter + ". ")]
    return line[len(letter) + 2:]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate_world(_cfg(root))
    return root


def _files(root):
    """Every written file but world.json (which names the output folder)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*"))
            if p.is_file() and p.name != "world.json"}


def test_same_seed_same_bytes_other_seed_other_world(world, tmp_path):
    generate_world(_cfg(tmp_path / "again"))
    files = _files(world)
    assert len(files) == 2 + 2 * 30 and files == _files(tmp_path / "again")
    generate_world(_cfg(tmp_path / "other", seed=4))
    assert _records(world) != _records(tmp_path / "other")


def test_layout_and_record_schema(world):
    train, test = _records(world), _records(world, "test")
    assert len(train) == 24 and len(test) == 6
    ids = [r["problem_id"] for r in train + test]
    assert len(set(ids)) == len(ids)
    for rec in train + test:
        assert set(rec) == {"problem_id", "problem", "problem_type", "data_type", "path", "options", "process",
                            "solution", "data_source"}
        assert rec["data_type"] == "video" and rec["problem_type"] in PROBLEM_TYPES
        assert rec["path"].startswith("./videos/") and (world / rec["path"][2:]).is_file()
        assert rec["process"].startswith("<think>") and rec["process"].endswith("</think>")
        assert (rec["problem_type"] == "multiple choice") == bool(rec["options"])


def test_all_five_problem_types_present(world):
    assert {r["problem_type"] for r in _records(world)} == set(PROBLEM_TYPES)


def _visible_frames(scene, item):
    fps, n = scene["fps"], scene["num_frames"]
    return [k for k in range(n) if item["appear_s"] - 1e-6 <= k / fps < item["disappear_s"] - 1e-6]


def _pos(obj, t):
    dt = t - obj["appear_s"]
    return obj["start"][0] + obj["velocity"][0] * dt, obj["start"][1] + obj["velocity"][1] * dt


def _event_time(scene, text):
    """Time of an option event such as "the red circle appears", read off the raw scene graph."""
    for o in scene["objects"]:
        name = f"the {o['colour']} {o['shape']} "
        if text.startswith(name):
            verb = text[len(name):]
            if verb == "appears":
                return o["appear_s"]
            if verb == "disappears":
                return o["disappear_s"]
            assert verb == f"turns {o['change']['colour']}"
            return o["change"]["time_s"]
    raise AssertionError(f"no object for event {text!r}")


def _check_answer(rec, scene):
    """Re-derive the answer from the scene graph alone and compare with the record."""
    kind = rec["data_source"].split("/")[1]
    objs = {o["id"]: o for o in scene["objects"]}
    q = scene["question"]
    ans = _answer(rec)
    if kind in ("count", "count_number"):
        n = sum(1 for o in objs.values() if _visible_frames(scene, o))
        assert (_chosen_option(rec) if kind == "count" else ans) == str(n)
    elif kind == "colour_large":
        (large,) = [o for o in objs.values() if o["size"] == "large"]
        assert _chosen_option(rec) == large["colour"]
    elif kind in ("direction", "distance", "duration", "appear_time", "colour_change"):
        o = objs[q["params"]["object_id"]]
        assert f"{o['colour']} {o['shape']}" in rec["problem"]
        frames = _visible_frames(scene, o)
        if kind == "direction":
            (vx, vy) = o["velocity"]
            truth = ("right" if vx > 0 else "left") if abs(vx) > abs(vy) else ("down" if vy > 0 else "up")
            assert _chosen_option(rec) == truth
        elif kind == "distance":
            (x0, y0), (x1, y1) = (_pos(o, k / scene["fps"]) for k in (frames[0], frames[-1]))
            assert abs(float(ans) - math.hypot(x1 - x0, y1 - y0)) <= 0.5
        elif kind == "duration":
            assert float(ans) == pytest.approx(len(frames) / scene["fps"])
        elif kind == "appear_time":
            assert float(ans) == pytest.approx(frames[0] / scene["fps"]) and frames[0] > 0
        else:
            assert _chosen_option(rec) == o["change"]["colour"] != o["colour"]
    elif kind == "event_order":
        times = {opt[3:]: _event_time(scene, opt[3:]) for opt in rec["options"]}
        assert len(set(times.values())) == len(times)
        assert min(times, key=times.get) == _chosen_option(rec)
    elif kind == "sign_text":
        assert [s["text"] for s in scene["signs"]] == [ans]
    elif kind == "describe":
        for o in objs.values():
            assert f"{o['size']} {o['colour']} {o['shape']}" in ans
    else:
        raise AssertionError(f"untested kind {kind}")


def test_answers_follow_from_scene_graphs(world):
    records = _records(world) + _records(world, "test")
    kinds = set()
    for rec in records:
        _check_answer(rec, _scene(world, rec))
        kinds.add(rec["data_source"].split("/")[1])
    assert kinds == set(LEVELS["medium"].kinds)


def _decode(path):
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_pixels_match_scene_graph(world):
    """At each visible object's centre the decoded frame shows the object's current colour."""
    checked = 0
    for rec in _records(world)[:10]:
        scene = _scene(world, rec)
        frames = _decode(world / rec["path"][2:])
        assert frames.shape == (scene["num_frames"], scene["height"], scene["width"], 3)
        for o in scene["objects"]:
            if o["shape"] == "ring":                       # hollow: its centre shows the background
                continue
            for k in _visible_frames(scene, o)[1::7]:
                t = k / scene["fps"]
                x, y = (int(round(v)) for v in _pos(o, t))
                colour = o["change"]["colour"] if o["change"] and t >= o["change"]["time_s"] else o["colour"]
                seen = frames[k, y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0)
                assert np.abs(seen - np.array(COLOURS[colour])).max() < 40, (rec["problem_id"], o["id"], k)
                checked += 1
    assert checked > 20


def test_easy_level_is_small_and_balanced(tmp_path):
    root = tmp_path / "easy"
    generate_world(_cfg(root, difficulty="easy", num_train=90, num_test=0, width=64, height=64, duration_s=2.0))
    records = _records(root)
    by_kind = collections.defaultdict(collections.Counter)
    for rec in records:
        assert rec["problem_type"] == "multiple choice"
        by_kind[rec["data_source"]][_answer(rec)] += 1
        scene = _scene(root, rec)
        assert 1 <= len(scene["objects"]) <= 3 and not scene["signs"]
        assert {o["colour"] for o in scene["objects"]} <= {"red", "green", "blue", "yellow"}
    assert set(by_kind) == {"synth-easy/count", "synth-easy/colour_large", "synth-easy/direction"}
    canonical = {"synth-easy/count": ["A. 1", "B. 2", "C. 3"], "synth-easy/direction": ["A. left", "B. right"],
                 "synth-easy/colour_large": ["A. red", "B. green", "C. blue", "D. yellow"]}
    assert all(rec["options"] == canonical[rec["data_source"]] for rec in records)   # a value keeps its letter
    for kind, letters in by_kind.items():
        n_options = len(next(r for r in records if r["data_source"] == kind)["options"])
        assert len(letters) == n_options, kind                      # every letter is used
        assert max(letters.values()) - min(letters.values()) <= 1, (kind, letters)


def test_reference_reasoning_styles(tmp_path, world):
    for rec in _records(world):
        text = rec["process"][len("<think>"):-len("</think>")]
        for step in ("Let me watch the whole clip", "The question is about", "What matters here",
                     "Let me double-check"):
            assert step in text
        if rec["problem_type"] != "free-form":
            assert text.endswith(f"So the answer is {_answer(rec)}.") or f"answer is {_answer(rec)}," in text
    generate_world(_cfg(tmp_path / "brief", cot_style="brief", num_train=11, num_test=0))
    for rec in _records(tmp_path / "brief"):
        text = rec["process"][len("<think>"):-len("</think>")]
        assert 1 <= text.count(". ") + 1 <= 2 and len(text) < 200, text


def test_vp9_webm(tmp_path):
    root = tmp_path / "vp9"
    generate_world(_cfg(root, codec="vp9", num_train=2, num_test=0, width=64, height=64, duration_s=2.0,
                        difficulty="easy"))
    rec = _records(root)[0]
    assert rec["path"].endswith(".webm")
    with av.open(str(root / rec["path"][2:])) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
    assert _decode(root / rec["path"][2:]).shape == (16, 64, 64, 3)


@pytest.mark.parametrize("change, field", [
    ({"question_kinds": ["count", "colour_of_everything"]}, "synth.question_kinds"),
    ({"fps": 5}, "synth.fps"),
    ({"width": 63}, "synth.width"),
    ({"duration_s": 1.0}, "synth.duration_s"),
])
def test_bad_settings_name_the_field(tmp_path, change, field):
    with pytest.raises(WorldConfigError, match=re.escape(field)):
        generate_world(_cfg(tmp_path / "bad", **change))


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(WorldConfigError, match="not empty"):
        generate_world(_cfg(tmp_path, num_train=1, num_test=0))
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_cli_stage_writes_the_tiny_world(tmp_path):
    from videorft.engine.cli import main

    out = tmp_path / "world"
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tiny" / "synth.yaml"
    code = main(["synth", "--config", str(recipe), f"synth.output_dir={out}", "synth.num_train=4",
                 "synth.num_test=2", f"run.output_dir={tmp_path / 'run'}", "run.tensorboard=false"])
    assert code == 0
    assert len(_records(out)) == 4 and len(_records(out, "test")) == 2
    assert json.loads((out / "world.json").read_text())["synth"]["difficulty"] == "easy"
    bad = main(["synth", "--config", str(recipe), f"synth.output_dir={tmp_path / 'bad'}", "synth.width=63",
                f"run.output_dir={tmp_path / 'run-bad'}", "run.tensorboard=false"])
    assert bad == 2                                        # the stage reports bad settings as a config error


def test_caption_pairs_describe_each_decoded_frame(world):
    from videorft.loaders.sampling import sample_indices
    from videorft.loaders.synth.captions import caption_pairs

    frames, captions = caption_pairs(world, "test", frames_per_video=4)
    records = _records(world, "test")
    assert frames.dtype == torch.uint8 and frames.shape == (4 * len(records), 96, 96, 3)
    assert len(captions) == len(frames)
    for r, rec in enumerate(records):
        scene = _scene(world, rec)
        for j, k in enumerate(sample_indices(scene["num_frames"], 4)):
            caption, frame, t = captions[4 * r + j], frames[4 * r + j].numpy(), k / scene["fps"]
            for o in scene["objects"]:
                colour = o["change"]["colour"] if o["change"] and t >= o["change"]["time_s"] else o["colour"]
                phrase = f"a {o['size']} {colour} {o['shape']} "
                if k not in _visible_frames(scene, o):
                    assert phrase not in caption + " "
                    continue
                assert phrase in caption, (caption, phrase)
                x, y = _pos(o, t)
                where = caption.split(phrase)[1].split(" and ")[0].split(",")[0]
                assert ("left" in where) == (x < 32) and ("right" in where) == (x >= 64), (where, x)
                assert ("top" in where) == (y < 32) and ("bottom" in where) == (y >= 64), (where, y)
                if o["shape"] != "ring":
                    seen = frame[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].reshape(-1, 3).mean(0)
                    assert np.abs(seen - np.array(COLOURS[colour])).max() < 40
            for s in scene["signs"]:
                assert f"a sign reading {s['text']}" in caption


def test_read_scene_gives_the_graph_and_question(world):
    from videorft.loaders.synth.phrases import scene_story
    from videorft.loaders.synth.world import read_scene

    rec = next(r for r in _records(world) if r["problem_type"] == "free-form")
    scene, question = read_scene(world, rec["problem_id"])
    assert question["answer"] == _answer(rec) == scene_story(scene)
    expected = {k: v for k, v in _scene(world, rec).items() if k not in ("problem_id", "question")}
    assert json.loads(json.dumps(scene.to_dict())) == expected
