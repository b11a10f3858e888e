"""Client sampling and client-to-group assignment: seeded, identical on every rank, load-balanced."""

from hpc_fed.fed.sampling import assign_clients, sample_clients


def test_sampling_is_seeded_distinct_and_varies_by_round():
    a = sample_clients(10, 4, seed=0, round_idx=3)
    assert a == sample_clients(10, 4, seed=0, round_idx=3)
    assert len(set(a)) == 4 and all(0 <= c < 10 for c in a)
    assert len({tuple(sample_clients(10, 4, 0, t)) for t in range(10)}) > 1


def test_assignment_covers_clients_and_balances_load():
    sizes = [100, 10, 10, 10, 10, 7]
    plan = assign_clients([0, 1, 2, 3, 4], sizes, num_groups=2)
    assert plan == [[0], [1, 2, 3, 4]]  # the heavy client alone; the light ones share a group
    even = assign_clients([0, 1, 2, 3, 4, 5], [5] * 6, num_groups=2)
    assert sorted(c for g in even for c in g) == list(range(6)) and list(map(len, even)) == [3, 3]


def test_more_groups_than_clients_leaves_groups_idle():
    plan = assign_clients([3], [1, 1, 1, 7], num_groups=3)
    assert plan == [[3], [], []]
