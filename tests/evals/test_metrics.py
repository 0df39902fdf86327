import math

import numpy as np
import pytest

from evals.metrics import ks_for, mean_pass_at_k, pass_at_k


def reference(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (10, 3, 1), (10, 3, 5), (10, 0, 10), (200, 13, 10),
                                   (200, 199, 100), (5, 4, 2)])
def test_matches_exact_binomial_formula(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(reference(n, c, k), rel=1e-12, abs=1e-12)


def test_known_values():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(2, 1, 2) == 1.0
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)


def test_stable_for_large_n():
    # C(5000, 100) overflows floats; the product form stays finite and inside [0, 1]
    value = pass_at_k(5000, 7, 100)
    assert 0.0 < value < 1.0 and not math.isnan(value)
    assert value == pytest.approx(1 - np.prod(1 - 100 / np.arange(5000 - 7 + 1, 5001)))


def test_invalid_arguments():
    for n, c, k in [(3, 4, 1), (3, 1, 4), (3, 1, 0), (3, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_mean_and_ks():
    assert mean_pass_at_k([(1, 1), (1, 0)], 1) == 0.5
    assert mean_pass_at_k([(1, 1)], 5) is None
    assert ks_for(1) == [1] and ks_for(20) == [1, 5, 10]
