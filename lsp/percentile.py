"""``percentile(values, q)``: the one percentile of the code base (latency stats and every benchmark).

Linear interpolation between the closest ranks, numpy's default ``method="linear"`` (Hyndman & Fan type 7,
also ``statistics.quantiles(method="inclusive")``): the value at fractional rank ``q * (n - 1)`` of the
sorted values. So ``q = 0.5`` is the median, ``q = 0`` the minimum and ``q = 1`` the maximum; with one value
every percentile is that value. It lives here, in the lowest package that reports one (the language
server's ``codeloop/stats``), so the benchmarks above can share it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-quantile (0 <= q <= 1) of ``values`` by linear interpolation; None when there are none."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
