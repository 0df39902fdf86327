"""Selecting among k streamed candidates: cut per sample, checked as each finishes, deadline, late result."""

from __future__ import annotations

import asyncio

from lsp.checks.ranker import Candidate
from lsp.checks.selection import select
from lsp.checks.verdict import Verdict, VerdictStatus
from lsp.engine_client import Sample, Samples
from tests.lsp.helpers import ctx

CTX = ctx("def f(n):\n    |\n\n\ndef g():\n    pass\n")


async def stream(snapshots: list[list[Sample]], closed: list[bool], delay_s: float = 0.0):
    try:
        for snap in snapshots:
            await asyncio.sleep(delay_s)
            yield Samples(snap)
    finally:
        closed.append(True)


def verdict(passed: int, total: int = 2) -> Verdict:
    return Verdict(VerdictStatus.PASSED if passed == total else VerdictStatus.FAILED, passed, total, "x")


def checker(results: dict[str, tuple[float, Verdict]], calls: list[str]):
    async def check(c: Candidate) -> Verdict:
        calls.append(c.text)
        delay, v = results[c.text]
        await asyncio.sleep(delay)
        return v
    return check


def final_snapshot(*texts: str, logprobs=None) -> list[Sample]:
    return [Sample(i, t, (logprobs or [None] * len(texts))[i], True) for i, t in enumerate(texts)]


async def test_best_checked_candidate_wins_over_the_model_ranking():
    calls: list[str] = []
    results = {"return 1": (0.0, verdict(1)), "return 2": (0.0, verdict(2)), "return 3": (0.0, verdict(0))}
    snaps = [final_snapshot("return 1", "return 2", "return 3", logprobs=[-1.0, -3.0, -0.5])]
    sel = await select(stream(snaps, []), CTX, checker(results, calls), deadline_s=5)
    assert sel is not None and sel.candidate.text == "return 2" and sel.verdict.passed and sel.late is None
    assert sorted(calls) == ["return 1", "return 2", "return 3"]


async def test_identical_and_empty_candidates_are_checked_once():
    calls: list[str] = []
    results = {"return 1": (0.0, verdict(2))}
    sel = await select(stream([final_snapshot("return 1", "return 1", "")], []), CTX, checker(results, calls), 5)
    assert calls == ["return 1"] and sel.candidate.text == "return 1"


async def test_a_sample_is_cut_and_checked_before_the_stream_ends():
    calls: list[str] = []
    closed: list[bool] = []
    results = {"x = 1\n    return x": (0.0, verdict(2)), "return 5": (0.0, verdict(0))}
    snaps = [[Sample(0, "x = 1\n    return x\n\n\ndef h", -1.0), Sample(1, "return", -1.0)],
             [Sample(0, "x = 1\n    return x\n\n\ndef h():", -1.0), Sample(1, "return 5", -2.0, True)],
             [Sample(0, "never read", -1.0), Sample(1, "never read", -1.0)]]
    sel = await select(stream(snaps, closed), CTX, checker(results, calls), 5)
    assert calls == ["x = 1\n    return x", "return 5"] and closed == [True]
    assert sel.candidate.text == "x = 1\n    return x"


async def test_deadline_shows_the_model_first_unmarked_and_the_result_arrives_later():
    results = {"return 1": (0.3, verdict(0)), "return 2": (0.3, verdict(2))}
    snaps = [final_snapshot("return 1", "return 2", logprobs=[-1.0, -2.0])]
    sel = await select(stream(snaps, []), CTX, checker(results, []), deadline_s=0.05)
    assert sel.candidate.text == "return 1" and sel.verdict is None and sel.late is not None
    final = await sel.late
    assert final.candidate.text == "return 2" and final.verdict.passed and final.late is None


async def test_a_candidate_known_to_pass_at_the_deadline_is_shown_marked():
    results = {"return 1": (0.5, verdict(2)), "return 2": (0.0, verdict(2))}
    snaps = [final_snapshot("return 1", "return 2", logprobs=[-1.0, -2.0])]
    sel = await select(stream(snaps, []), CTX, checker(results, []), deadline_s=0.1)
    assert sel.candidate.text == "return 2" and sel.verdict.passed and sel.late is not None
    sel.late.cancel()


async def test_cancelling_the_selection_cancels_its_checks():
    cancelled: list[str] = []

    async def slow(c: Candidate) -> Verdict:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(c.text)
            raise
        return verdict(2)

    task = asyncio.ensure_future(select(stream([final_snapshot("return 1")], []), CTX, slow, deadline_s=5))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert cancelled == ["return 1"]


async def test_all_empty_candidates_select_nothing():
    assert await select(stream([final_snapshot("", "")], []), CTX, checker({}, []), 5) is None


async def test_a_pass_nothing_can_beat_any_more_stops_the_generation():
    closed: list[bool] = []
    results = {"return 1": (0.0, verdict(2))}
    snaps = [[Sample(0, "return 1", -1.0, True), Sample(1, "ret", -3.0)],  # sample 1 already ranks lower
             [Sample(0, "return 1", -1.0, True), Sample(1, "return 5", -3.5, True)]]
    sel = await select(stream(snaps, closed, delay_s=0.2), CTX, checker(results, []), deadline_s=5)
    assert sel.candidate.text == "return 1" and sel.verdict.passed and closed == [True]
    assert [c.text for c in sel.candidates] == ["return 1"]  # the second sample was never finished


async def test_a_sample_that_may_still_outrank_the_pass_is_waited_for():
    results = {"return 1": (0.0, verdict(2)), "return 5": (0.0, verdict(2))}
    snaps = [[Sample(0, "return 1", -1.0, True), Sample(1, "ret", -0.2)],  # sample 1 may still rank higher
             [Sample(0, "return 1", -1.0, True), Sample(1, "return 5", -0.5, True)]]
    sel = await select(stream(snaps, [], delay_s=0.05), CTX, checker(results, []), deadline_s=5)
    assert sel.candidate.text == "return 5" and len(sel.candidates) == 2


async def test_a_passing_greedy_suggestion_is_shown_at_once_and_sampling_stops():
    """settle_on: when the suggestion an unchecked request would show passes, the sampled candidates (which
    the model may rank higher, still generating) are not waited for."""
    calls: list[str] = []
    closed: list[bool] = []
    results = {"return n": (0.0, verdict(2))}
    snaps = [[Sample(0, "return n", -2.0, True), Sample(1, "if n", -0.1)]]
    snaps += [[Sample(0, "return n", -2.0, True), Sample(1, "if n" + " " * i, -0.1)] for i in range(1, 50)]
    sel = await select(stream(snaps, closed, delay_s=0.01), CTX, checker(results, calls), 5, settle_on=0)
    assert sel.candidate.text == "return n" and sel.verdict.passed and sel.late is None
    assert closed == [True] and sel.generation_ms < 300  # the stream was stopped, not read to its end
    without = await select(stream(snaps, [], delay_s=0.01), CTX, checker(results, []), 5)
    assert without.generation_ms > sel.generation_ms  # without settle_on, the higher-ranked sample is awaited


async def test_a_failing_greedy_suggestion_settles_nothing():
    results = {"return 0": (0.0, verdict(0)), "return n": (0.0, verdict(2))}
    snaps = [final_snapshot("return 0", "return n", logprobs=[-1.0, -2.0])]
    sel = await select(stream(snaps, []), CTX, checker(results, []), 5, settle_on=0)
    assert sel.candidate.text == "return n" and sel.verdict.passed


def slow_second(first: str, second: str, steps: int) -> list[list[Sample]]:
    """Sample 0 finishes at once; sample 1 keeps generating for ``steps`` snapshots, then finishes."""
    return ([[Sample(0, first, -1.0, True), Sample(1, "ret", -2.0)]]
            + [[Sample(0, first, -1.0, True), Sample(1, "ret", -2.0)] for _ in range(steps)]
            + [[Sample(0, first, -1.0, True), Sample(1, second, -2.0, True)]])


async def test_the_deadline_runs_from_the_first_candidate_even_while_others_generate():
    closed: list[bool] = []
    results = {"return 1": (0.0, verdict(0)), "return 2": (0.0, verdict(2))}
    start = asyncio.get_running_loop().time()
    sel = await select(stream(slow_second("return 1", "return 2", 20), closed, delay_s=0.05), CTX,
                       checker(results, []), deadline_s=0.2)
    shown_after = asyncio.get_running_loop().time() - start
    assert shown_after < 0.6  # not the 1.1 s the second sample takes to finish
    assert sel.candidate.text == "return 1" and not sel.verdict.passed  # what is known: it fails, shown marked
    assert sel.generating and sel.late is not None and closed == []
    final = await sel.late
    assert final.candidate.text == "return 2" and final.verdict.passed and closed == [True]


async def test_stopping_a_late_generation_keeps_what_was_cut():
    closed: list[bool] = []
    results = {"return 1": (0.0, verdict(1)), "return 2": (0.0, verdict(2))}
    sel = await select(stream(slow_second("return 1", "return 2", 200), closed, delay_s=0.05), CTX,
                       checker(results, []), deadline_s=0.1)
    assert sel.generating
    sel.stop_generating()
    final = await asyncio.wait_for(sel.late, 10)  # stopped at once; the margin is for a loaded machine
    assert final.candidate.text == "return 1" and final.verdict.num_passed == 1 and closed == [True]


async def test_cancelling_a_late_result_stops_its_generation():
    closed: list[bool] = []
    results = {"return 1": (0.0, verdict(0)), "return 2": (0.0, verdict(2))}
    sel = await select(stream(slow_second("return 1", "return 2", 200), closed, delay_s=0.05), CTX,
                       checker(results, []), deadline_s=0.1)
    sel.late.cancel()
    await asyncio.gather(sel.late, return_exceptions=True)
    await asyncio.sleep(0.1)
    assert closed == [True]


async def test_a_sample_finishing_before_the_greedy_one_is_not_shown_in_its_place():
    results = {"pass": (0.0, verdict(0)), "x = greedy\n    return x": (0.5, verdict(2))}
    greedy_late = ([[Sample(0, "x = gre", -1.0), Sample(1, "pass", -0.1, True)]]
                   + [[Sample(0, "x = gre", -1.0), Sample(1, "pass", -0.1, True)] for _ in range(6)]
                   + [[Sample(0, "x = greedy\n    return x", -1.0, True), Sample(1, "pass", -0.1, True)]])
    sel = await select(stream(greedy_late, [], delay_s=0.05), CTX, checker(results, []), deadline_s=0.05,
                       settle_on=0)
    assert sel.candidate.text == "x = greedy\n    return x"  # the usual suggestion, not the sample done first
    assert sel.verdict is None and sel.late is not None  # shown at the deadline, its check still running
    final = await sel.late
    assert final.candidate.text == "x = greedy\n    return x" and final.verdict.passed


def opener(snapshots: list[list[Sample]], opened: list[bool], closed: list[bool], delay_s: float = 0.0):
    """``more`` of a staged selection: records that the second request was opened."""
    def more(n: int = 1):
        opened.append(True)
        return stream(snapshots, closed, delay_s)
    return more


async def test_staged_a_passing_greedy_suggestion_never_opens_the_samples_request():
    opened: list[bool] = []
    results = {"return n": (0.05, verdict(2))}
    more = opener([final_snapshot("return 1", "return 2")], opened, [])
    sel = await select(stream([final_snapshot("return n")], []), CTX, checker(results, []), 5, settle_on=0,
                       more=more)
    assert sel.candidate.text == "return n" and sel.verdict.passed and sel.late is None and opened == []


async def test_staged_a_failing_greedy_suggestion_opens_the_samples_request_numbered_after_it():
    opened: list[bool] = []
    closed: list[bool] = []
    calls: list[str] = []
    results = {"return 0": (0.0, verdict(0)), "return 1": (0.0, verdict(1)), "return n": (0.0, verdict(2))}
    more = opener([final_snapshot("return 1", "return n", logprobs=[-0.5, -3.0])], opened, closed)
    sel = await select(stream([final_snapshot("return 0", logprobs=[-1.0])], []), CTX, checker(results, calls), 5,
                       settle_on=0, more=more)
    assert opened == [True] and closed == [True] and calls == ["return 0", "return 1", "return n"]
    assert sel.candidate.text == "return n" and sel.verdict.passed
    assert sorted(c.index for c in sel.candidates) == [0, 1, 2]  # the samples numbered after the greedy one


async def test_staged_the_deadline_during_the_greedy_check_shows_it_and_the_samples_follow_late():
    opened: list[bool] = []
    results = {"return 0": (0.3, verdict(0)), "return n": (0.0, verdict(2))}
    more = opener([final_snapshot("return n")], opened, [])
    sel = await select(stream([final_snapshot("return 0")], []), CTX, checker(results, []), deadline_s=0.05,
                       settle_on=0, more=more)
    assert sel.candidate.text == "return 0" and sel.verdict is None and sel.late is not None and opened == []
    final = await sel.late
    assert opened == [True] and final.candidate.text == "return n" and final.verdict.passed


async def test_staged_cancelling_the_late_result_while_the_greedy_check_runs_opens_nothing():
    opened: list[bool] = []
    results = {"return 0": (0.3, verdict(0))}
    sel = await select(stream([final_snapshot("return 0")], []), CTX, checker(results, []), deadline_s=0.05,
                       settle_on=0, more=opener([final_snapshot("return n")], opened, []))
    sel.late.cancel()
    await asyncio.gather(sel.late, return_exceptions=True)
    await asyncio.sleep(0.4)
    assert opened == []


async def test_staged_an_empty_greedy_suggestion_goes_straight_to_the_samples():
    opened: list[bool] = []
    results = {"return n": (0.0, verdict(2))}
    sel = await select(stream([final_snapshot("")], []), CTX, checker(results, []), 5, settle_on=0,
                       more=opener([final_snapshot("return n")], opened, []))
    assert opened == [True] and sel.candidate.text == "return n" and sel.verdict.passed


def decoding(text: str, steps: int) -> list[list[Sample]]:
    """One sample streamed over ``steps`` snapshots (a growing prefix, then the finished text)."""
    return [[Sample(0, text[: len(text) * (i + 1) // (steps + 1)], -0.1, False)] for i in range(steps)] + \
        [final_snapshot(text)]


async def test_staged_a_failing_greedy_suggestion_is_shown_at_once_when_no_sample_can_beat_the_deadline():
    """It decoded for ~0.3 s; the samples, asked for only now, are not expected within the 0.2 s deadline:
    showing the failing greedy one (with its verdict) at once is what waiting would show, later."""
    results = {"return 0": (0.0, verdict(0)), "return n": (0.0, verdict(2))}
    more = opener(decoding("return n", 3), [], [], delay_s=0.1)
    loop = asyncio.get_running_loop()
    sel = await select(stream(decoding("return 0", 3), [], delay_s=0.1), CTX, checker(results, []),
                       deadline_s=0.2, settle_on=0, more=more)
    shown_at = loop.time()
    assert sel.candidate.text == "return 0" and sel.verdict is not None and not sel.verdict.passed
    assert sel.late is not None and sel.generating
    final = await sel.late
    assert loop.time() - shown_at >= 0.3  # the samples came well after it was shown
    assert final.candidate.text == "return n" and final.verdict.passed


async def test_staged_samples_expected_before_the_deadline_are_waited_for():
    """Same decoding times, a 5 s deadline: the samples (~0.4 s) can still come in time, so they are."""
    results = {"return 0": (0.0, verdict(0)), "return n": (0.0, verdict(2))}
    more = opener(decoding("return n", 3), [], [], delay_s=0.1)
    sel = await select(stream(decoding("return 0", 3), [], delay_s=0.1), CTX, checker(results, []),
                       deadline_s=5, settle_on=0, more=more)
    assert sel.candidate.text == "return n" and sel.verdict.passed and sel.late is None


def rounds(*answers: list[list[Sample]]):
    """``more`` answering each request with the next snapshots; records how many samples each asked for."""
    asked: list[int] = []

    def more(n: int):
        asked.append(n)
        return stream(answers[len(asked) - 1], [])
    return more, asked


async def test_staged_repeated_samples_are_topped_up_to_k_distinct_candidates_when_none_passed():
    calls: list[str] = []
    results = {"return 0": (0.0, verdict(0)), "return 1": (0.0, verdict(1)), "return n": (0.0, verdict(2))}
    more, asked = rounds([final_snapshot("return 0", "return 1", "return 0")], [final_snapshot("return n", "return 1")])
    sel = await select(stream([final_snapshot("return 0")], []), CTX, checker(results, calls), 5, settle_on=0,
                       more=more, want=4)
    assert asked == [3, 2]  # k - 1, then the two that repeated
    assert calls == ["return 0", "return 1", "return n"]  # each text checked once
    assert sel.candidate.text == "return n" and sel.verdict.passed


async def test_staged_no_top_up_once_a_candidate_passed():
    results = {"return 0": (0.0, verdict(0)), "return n": (0.0, verdict(2))}
    more, asked = rounds([final_snapshot("return n", "return n", "return 0")], [final_snapshot("return 5")])
    sel = await select(stream([final_snapshot("return 0")], []), CTX, checker(results, []), 5, settle_on=0,
                       more=more, want=4)
    assert asked == [3] and sel.candidate.text == "return n" and sel.verdict.passed
