"""Suggestion caches."""

from __future__ import annotations

from lsp.cache import SuggestionCache


def test_typed_through_answers_the_rest():
    cache = SuggestionCache()
    before, after = "def f():\n    return ", "\n\nprint(1)\n"
    cache.put("u", 1, 1, 11, before, after, "a + b")
    assert cache.typed_through("u", before + "a", after) == " + b"
    assert cache.typed_through("u", before + "a +", after) == " b"
    assert cache.typed_through("u", before + "x", after) is None  # typed something else
    assert cache.typed_through("u", before + "a + b", after) is None  # typed all of it
    assert cache.typed_through("u", before + "a", after + "z") is None  # suffix changed
    assert cache.typed_through("u", "# edit\n" + before + "a", after) is None  # text before changed
    assert cache.typed_through("other", before + "a", after) is None
    assert cache.num_typed_through_hits == 2


def test_exact_cache_is_per_version_and_bounded():
    cache = SuggestionCache(max_entries=3)
    for i in range(5):
        cache.put("u", i, 0, 0, "", "", f"s{i}")
    assert cache.get_exact("u", 4, 0, 0) == "s4"
    assert cache.get_exact("u", 0, 0, 0) is None
    assert cache.get_exact("u", 4, 0, 1) is None
    cache.forget("u")
    assert cache.get_exact("u", 4, 0, 0) is None and cache.typed_through("u", "s", "") is None
