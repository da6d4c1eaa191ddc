import itertools

from videorft.engine.trainers.sampler import ResumableSampler


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_resuming_at_k_continues_the_same_order():
    full = take(ResumableSampler(10, seed=3), 25)
    for k in (0, 4, 10, 17):
        assert take(ResumableSampler(10, seed=3, start=k), 25 - k) == full[k:]


def test_each_epoch_is_a_permutation_and_seeds_differ():
    order = take(ResumableSampler(10, seed=1), 20)
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:]) == list(range(10))
    assert order[:10] != order[10:]
    assert take(ResumableSampler(10, seed=2), 10) != order[:10]


def test_ranks_split_an_epoch():
    a = take(ResumableSampler(9, seed=0, rank=0, world_size=2), 5)
    b = take(ResumableSampler(9, seed=0, rank=1, world_size=2), 5)
    assert set(a) | set(b) == set(range(9))
    assert take(ResumableSampler(4, seed=0, shuffle=False), 6) == [0, 1, 2, 3, 0, 1]
