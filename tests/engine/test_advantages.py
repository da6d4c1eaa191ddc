import pytest
import torch

from videorft.engine.rl.advantages import group_advantages, group_outcomes


def test_matches_the_released_formula():
    rewards = torch.tensor([1.0, 0.0, 2.0, 1.0, 3.0, 3.0, 0.0, 1.0])
    adv = group_advantages(rewards, group_size=4)
    for g in range(2):
        r = rewards[g * 4:(g + 1) * 4]
        torch.testing.assert_close(adv[g * 4:(g + 1) * 4], (r - r.mean()) / (r.std() + 1e-4))


def test_std_conventions_and_constant_groups():
    rewards = torch.tensor([0.0, 1.0, 1.0, 1.0])
    biased = group_advantages(rewards, 2, std="biased")
    torch.testing.assert_close(biased, torch.tensor([-0.5, 0.5, 0.0, 0.0]) / (0.5 + 1e-4))
    assert torch.equal(group_advantages(rewards, 2, std="none"), torch.tensor([-0.5, 0.5, 0.0, 0.0]))
    assert torch.equal(group_advantages(torch.ones(6), 3)[3:], torch.zeros(3))


def test_rejects_ragged_groups():
    with pytest.raises(ValueError, match="group_size=3"):
        group_advantages(torch.ones(4), 3)


def test_group_outcomes():
    rewards = torch.tensor([0.0, 1.0, 2.0, 2.5, 0.5, 0.0])
    assert group_outcomes(rewards, 2, low=1.0, high=2.0) == pytest.approx((2 / 3, 1 / 3))
