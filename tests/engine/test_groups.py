"""Dynamic sampling's choice of groups: informative groups first, sizes fixed, rows kept together."""

import torch

from videorft.engine.rollout.types import Rollouts
from videorft.engine.trainers.groups import Draw, Rewards, _select, informative
from videorft.loaders.collate import SpecialIds
from videorft.loaders.dataset import Sample
from videorft.loaders.clip import VideoClip
from videorft.loaders.records import Record

G = 2
IDS = SpecialIds(pad=0, image=91, video=92, vision_start=93, vision_end=94)


def _sample(i: int) -> Sample:
    record = Record(problem_id=i, problem=f"q{i}", problem_type="multiple choice", data_type="video", path="x.mp4",
                    solution="<answer>A</answer>")
    clip = VideoClip(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), [0, 1], [0.0, 0.5], fps=2.0, total_frames=2)
    return Sample(i, record, clip, f"prompt {i}", torch.tensor([5, 6, 92, 92][: 2 + i % 3]),
                  torch.zeros(4, 8), torch.tensor([2, 2, 2]), 1.0)


def _draw(first: int, totals: list[float], width: int):
    """A drawn batch of len(totals)/G prompts, as collect_groups keeps it."""
    from videorft.loaders.collate import collate_prompts

    n = len(totals)
    samples = [_sample(first + p) for p in range(n // G)]
    ids = torch.arange(n * width).view(n, width) + 100 * first
    rollouts = Rollouts(ids, torch.ones(n, width, dtype=torch.long), [f"t{first}-{i}" for i in range(n)], G,
                        logprobs=-torch.rand(n, width))
    total = torch.tensor(totals)
    return Draw(collate_prompts(samples, IDS), rollouts, Rewards(total, {"accuracy": total.clone()}))


def test_groups_with_equal_rewards_carry_no_signal():
    rewards = Rewards(torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0]), {})
    assert informative(rewards, G).tolist() == [False, True, False]


def test_informative_groups_are_picked_across_draws_and_rows_stay_together():
    first = _draw(0, [1.0, 1.0, 0.0, 1.0], width=3)          # prompt 0 uninformative, prompt 1 informative
    second = _draw(10, [0.0, 2.0, 5.0, 5.0], width=5)        # prompt 10 informative, prompt 11 not
    groups = _select([first, second], wanted=2, group_size=G, ids=IDS, draws=2)
    assert [s.record.problem_id for s in groups.batch.samples] == [1, 10]
    assert groups.rewards.total.tolist() == [0.0, 1.0, 0.0, 2.0]
    assert groups.rollouts.texts == ["t0-2", "t0-3", "t10-0", "t10-1"]
    assert groups.rollouts.completion_ids.shape == (4, 5)             # padded to the widest draw
    assert groups.rollouts.completion_mask[:2, 3:].sum() == 0
    assert torch.equal(groups.rollouts.completion_ids[2], second.rollouts.completion_ids[0])
    assert groups.rollouts.logprobs.shape == (4, 5) and groups.rollouts.logprobs[:2, 3:].abs().sum() == 0
    assert groups.dropped == 2 and groups.draws == 2
    assert groups.batch.input_ids.shape[0] == 2


def test_short_of_informative_groups_the_step_is_topped_up():
    only = _draw(0, [1.0, 1.0, 0.0, 1.0, 3.0, 3.0], width=2)
    groups = _select([only], wanted=3, group_size=G, ids=IDS, draws=1)
    assert [s.record.problem_id for s in groups.batch.samples] == [1, 0, 2]
    assert groups.dropped == 0
