"""The one percentile: numpy's linear method, None for no values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp.percentile import percentile


def test_known_values():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10, 0], 0.0) == 0 and percentile([10, 0], 1.0) == 10
    assert percentile(range(1, 21), 0.95) == pytest.approx(19.05)  # rank 18.05: 19 + 0.05 * (20 - 19)


def test_q_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], 95)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.floats(0, 1))
def test_equals_numpy_linear(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, 100 * q, method="linear")),
                                                  rel=1e-9, abs=1e-6)
