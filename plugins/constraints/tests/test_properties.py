"""Properties that hold for any placement history (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from marathon_constraints.operators import GroupBy, MaxPer, Unique, select_instances_to_kill
from marathon_core.contracts.placement import OfferView, Placed

values = st.sampled_from(["r1", "r2", "r3", "r4", "r5"])
histories = st.lists(st.one_of(values, st.none()), max_size=20)


def agent(value: str) -> OfferView:
    return OfferView(hostname="h", agent_id="a", attributes={"rack": value})


@given(histories, values)
def test_unique_never_accepts_a_used_value(history: list[str | None], value: str) -> None:
    placed = Placed.of(history, instances=len(history) + 1)
    assert Unique().filter(agent(value), "rack", None, placed).ok is (value not in history)


@given(st.lists(values, max_size=60), st.integers(min_value=0, max_value=6))
def test_max_per_never_exceeds_n_when_placing_greedily(offers: list[str], n: int) -> None:
    placed = Placed.empty(instances=len(offers))
    for value in offers:
        if MaxPer().filter(agent(value), "rack", str(n), placed).ok:
            placed = placed.add(value)
    assert all(count <= n for count in placed.counts.values())
    # Greedy placement is also maximal: every value that was offered is full or unused.
    for value in set(offers):
        assert placed.count(value) == min(n, offers.count(value))


@given(
    st.lists(values, min_size=1, max_size=80),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=5),
)
def test_group_by_count_respects_its_targets(offers: list[str], instances: int, n: int) -> None:
    """Greedy 1.11 GROUP_BY: at most n groups, none above ceil(instances / n),
    and no more than instances % n groups above instances // n."""
    placed = Placed.empty(instances=instances)
    for value in offers:
        if placed.total == instances:
            break
        if GroupBy().filter(agent(value), "rack", str(n), placed).ok:
            placed = placed.add(value)
    per_group, remainder = divmod(instances, n)
    counts = list(placed.counts.values())
    assert len(counts) <= n
    assert all(c <= per_group + (1 if remainder else 0) for c in counts)
    assert sum(1 for c in counts if c > per_group) <= remainder


@given(st.lists(values, min_size=1, max_size=40))
def test_group_by_without_count_only_tops_up_the_smallest(offers: list[str]) -> None:
    """Classic GROUP_BY: a new value is always taken; a used one only while no used value
    has fewer instances. So with every value offered in turn, the counts stay level."""
    placed = Placed.empty(instances=len(offers))
    for value in offers:
        fewest = min(placed.counts.values(), default=0)
        ok = GroupBy().filter(agent(value), "rack", None, placed).ok
        assert ok is (placed.count(value) in (0, fewest))
        if ok:
            placed = placed.add(value)
    level = Placed.empty(instances=len(offers))
    for value in sorted(set(offers)) * 3:
        if GroupBy().filter(agent(value), "rack", None, level).ok:
            level = level.add(value)
    assert set(level.counts.values()) == {3}


@given(st.lists(values, min_size=1, max_size=30), st.data())
def test_kill_selection_balances(racks: list[str], data: st.DataObject) -> None:
    running = list(range(len(racks)))
    count = data.draw(st.integers(min_value=0, max_value=len(running)))
    chosen = select_instances_to_kill(running, count, [lambda i: racks[i]])
    assert len(chosen) <= count and len(set(chosen)) == len(chosen)
    assert set(chosen) <= set(running)

    def spread(alive: set[int]) -> int:
        sizes = [sum(1 for i in alive if racks[i] == r) for r in set(racks)]
        return max(sizes) - min(sizes)

    # Every kill keeps the groups within one of each other, or makes them more even.
    after = spread(set(running) - set(chosen))
    assert not chosen or after <= 1 or after < spread(set(running))
