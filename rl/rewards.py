"""Rewards from sandbox outcomes: a registry of functions sharing one signature.

Every reward is ``reward(completion: str, code: str | None, result: RunResult | None) -> float`` where
``code`` is the code extracted from the completion (None: no code found) and ``result`` the sandbox's
verdict on it (None: not run). Rewards are looked up by name and summed with weights.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.types import RunResult, RunStatus

RewardFn = Callable[[str, "str | None", "RunResult | None"], float]
REWARDS: dict[str, RewardFn] = {}


def reward(name: str) -> Callable[[RewardFn], RewardFn]:
    def register(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is registered twice")
        REWARDS[name] = fn
        return fn

    return register


@reward("fraction_passed")
def fraction_passed(completion: str, code: str | None, result: RunResult | None) -> float:
    """Share of the task's asserts that passed (``RunResult.fraction_passed``; 0 when nothing ran)."""
    return 0.0 if result is None else result.fraction_passed


@reward("full_pass")
def full_pass(completion: str, code: str | None, result: RunResult | None) -> float:
    """Bonus for passing every assert."""
    return 1.0 if result is not None and result.status is RunStatus.PASSED else 0.0


@reward("syntax_error")
def syntax_error(completion: str, code: str | None, result: RunResult | None) -> float:
    """-1 for code that does not parse."""
    if code is None:
        return 0.0
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return -1.0
    return 0.0


@reward("timeout")
def timeout(completion: str, code: str | None, result: RunResult | None) -> float:
    """-1 for a run killed by the wall clock or the memory limit."""
    bad = (RunStatus.TIMEOUT, RunStatus.MEMORY)
    return -1.0 if result is not None and result.status in bad else 0.0


@reward("missing_code")
def missing_code(completion: str, code: str | None, result: RunResult | None) -> float:
    """-1 when the completion holds no code at all."""
    return -1.0 if code is None or not code.strip() else 0.0


@dataclass(frozen=True)
class RewardSpec:
    """Weighted sum of registered rewards; the default favours passing asserts and punishes junk."""

    weights: tuple[tuple[str, float], ...] = (
        ("fraction_passed", 1.0), ("full_pass", 0.5), ("syntax_error", 0.25), ("timeout", 0.25),
        ("missing_code", 0.5),
    )

    def __post_init__(self) -> None:
        unknown = [name for name, _ in self.weights if name not in REWARDS]
        if unknown:
            raise ValueError(f"unknown rewards {unknown}; registered: {sorted(REWARDS)}")

    def __call__(self, completion: str, code: str | None, result: RunResult | None) -> tuple[float, dict]:
        parts = {name: REWARDS[name](completion, code, result) for name, _ in self.weights}
        total = sum(weight * parts[name] for name, weight in self.weights)
        return total, parts
