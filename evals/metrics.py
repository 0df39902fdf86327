"""Scores: the unbiased pass@k estimator (Chen et al. 2021), exact match and edit similarity of a completion,
and percentile-bootstrap intervals (plain, and paired over tasks for a difference between two runs)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

NUM_BOOTSTRAP = 2000


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


def exact_match(completion: str, gold: str) -> bool:
    """Equal up to surrounding whitespace (what the editor would insert is the same code)."""
    return completion.strip() == gold.strip()


def edit_similarity(completion: str, gold: str) -> float:
    """1 - Levenshtein distance / the longer length, over the stripped texts (1.0: identical)."""
    a, b = completion.strip(), gold.strip()
    if not a and not b:
        return 1.0
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / len(a)


def bootstrap_ci(values: list[float], seed: int = 0, num: int = NUM_BOOTSTRAP) -> tuple[float, float, float]:
    """(mean, low, high): 95% percentile bootstrap of the mean."""
    if not values:
        return 0.0, 0.0, 0.0
    x = np.asarray(values, dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(num, len(x)))
    means = x[idx].mean(axis=1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_bootstrap(a: dict[str, float], b: dict[str, float], seed: int = 0) -> tuple[float, float, float, int]:
    """(mean of b - a, low, high, num tasks) over the tasks both runs scored (resampled together)."""
    common = sorted(set(a) & set(b))
    diff = [b[t] - a[t] for t in common]
    mean, low, high = bootstrap_ci(diff, seed)
    return mean, low, high, len(common)
