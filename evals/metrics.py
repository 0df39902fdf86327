"""The unbiased pass@k estimator (Chen et al. 2021) and per-benchmark aggregation."""

from __future__ import annotations

from collections.abc import Iterable


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) passes.

    Computes ``1 - C(n-c, k) / C(n, k)`` as the product ``prod_{i=n-c+1}^{n} (1 - k/i)``, which never
    forms huge binomials (numerically stable for large n). Requires 0 <= c <= n and 1 <= k <= n.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float | None:
    """Mean pass@k over tasks given ``(n, c)`` per task; None when some task has fewer than k samples."""
    counts = list(counts)
    if not counts or any(n < k for n, _ in counts):
        return None
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def ks_for(num_samples: int) -> list[int]:
    """The usual k values that ``num_samples`` samples per task can estimate."""
    return [k for k in (1, 5, 10, 100) if k <= num_samples]
