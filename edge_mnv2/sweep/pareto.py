"""The Pareto front of a trade-off: the points no other point beats on both cost and value."""

from __future__ import annotations

from typing import Sequence


def pareto_front(costs: Sequence[float], values: Sequence[float]) -> list[int]:
    """Indices of the points on the front, cheapest first: a point is on it when no other point costs
    as little or less and is worth as much or more, with one of the two strictly. Equal points are all
    kept (neither beats the other)."""
    if len(costs) != len(values):
        raise ValueError(f"{len(costs)} costs but {len(values)} values")
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -values[i]))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        if values[i] > best:
            front.append(i)
            best = values[i]
        elif front and values[i] == values[front[-1]] and costs[i] == costs[front[-1]]:
            front.append(i)  # a twin of the last point on the front
    return front
