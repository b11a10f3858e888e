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


def test_round_robin_ignores_size_and_balanced_beats_it_on_unequal_clients():
    work = [40, 5, 30, 5, 5, 20]
    rr = assign_clients(range(6), work, num_groups=2, how="round_robin")
    assert rr == [[0, 2, 4], [1, 3, 5]]
    balanced = assign_clients(range(6), work, num_groups=2)

    def idle(plan):  # the groups' summed wait for the slowest one
        loads = [sum(work[c] for c in g) for g in plan]
        return sum(max(loads) - x for x in loads)

    assert idle(rr) == 45 and idle(balanced) == 5


def test_equal_local_steps_balance_by_count_not_by_samples():
    """With train.local_steps every client runs the same steps, whatever its size: the load is
    steps, so the groups get equal numbers of clients (by samples, the heavy client would sit
    alone and the other group would run three clients)."""
    from hpc_fed.client.local import local_steps
    from hpc_fed.config import load_config

    cfg = load_config(None, ["train.local_steps=5"]).train
    sizes = [100, 10, 10, 10]
    work = [local_steps(cfg, n, 1) for n in sizes]
    assert list(map(len, assign_clients(range(4), work, 2))) == [2, 2]
    assert list(map(len, assign_clients(range(4), sizes, 2))) == [1, 3]
