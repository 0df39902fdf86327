"""Grade one patch on one instance, following the data folder's README procedure step by step.

resolved  <=>  the patch is non-empty, applies, and every FAIL_TO_PASS and PASS_TO_PASS test has status
PASSED or XFAIL in the parsed test log (a test missing from the log counts as failed).
"""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import asdict, dataclass, field

from evals.swebench.environment import HarnessConfig, InstanceEnv, SetupError
from evals.swebench.instance import SweInstance
from evals.swebench.parsers import parse_log

OK_STATUSES = ("PASSED", "XFAIL")
APPLY_COMMANDS = ("git apply -v {p}", "git apply -v --reject {p}", "patch --batch --fuzz=5 -p1 -i {p}")


@dataclass
class PatchResult:
    """Outcome of grading one patch. ``status``: resolved, unresolved, empty_patch, patch_failed,
    setup_error or timeout (the last two are infrastructure problems, not model failures)."""

    instance_id: str
    resolved: bool
    status: str
    f2p_passed: int = 0
    f2p_total: int = 0
    p2p_passed: int = 0
    p2p_total: int = 0
    failing: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    test_seconds: float = 0.0
    message: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def grade(instance: SweInstance, statuses: dict[str, str]) -> tuple[int, int, list[str]]:
    """(FAIL_TO_PASS passing, PASS_TO_PASS passing, failing test names)."""
    ok = {t for t, s in statuses.items() if s in OK_STATUSES}
    f2p = [t for t in instance.fail_to_pass if t in ok]
    p2p = [t for t in instance.pass_to_pass if t in ok]
    failing = [t for t in (*instance.fail_to_pass, *instance.pass_to_pass) if t not in ok]
    return len(f2p), len(p2p), failing


def _patch_file(env: InstanceEnv, patch: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".diff", delete=False, dir=env.home) as f:
        f.write(patch if patch.endswith("\n") else patch + "\n")
    return f.name


def _apply(env: InstanceEnv, patch: str) -> tuple[bool, str]:
    path = _patch_file(env, patch)
    log = []
    for template in APPLY_COMMANDS:
        res = env.sh(template.format(p=shlex.quote(path)), 120)
        log.append(res.output[-500:])
        if res.returncode == 0:
            return True, ""
        env.reset()
    return False, "the patch does not apply:\n" + "\n".join(log)


def evaluate_patch(instance: SweInstance, patch: str, config: HarnessConfig) -> PatchResult:
    """Run the README procedure for ``patch``. The tests also run for an empty patch (so its F2P/P2P counts
    are reported), but an empty patch is never resolved."""
    result = PatchResult(instance.instance_id, False, "unresolved", f2p_total=len(instance.fail_to_pass),
                         p2p_total=len(instance.pass_to_pass))
    env = InstanceEnv(instance, config)
    try:
        result.setup_seconds = round(env.setup(), 2)
        env.reset()
        if patch.strip():
            applied, why = _apply(env, patch)
            if not applied:
                result.status, result.message = "patch_failed", why[-2000:]
                return result
            if instance.reinstall:
                env.sh(instance.reinstall, config.install_timeout_s)
        files = " ".join(shlex.quote(p) for p in instance.test_files())
        env.sh(f"git checkout -q HEAD -- {files} 2>/dev/null; true", 60)
        applied = env.sh(f"git apply -v {shlex.quote(_patch_file(env, instance.test_patch))}", 120)
        if applied.returncode != 0:
            raise SetupError(f"the test patch does not apply:\n{applied.output[-1000:]}")
        run = env.sh(f"{instance.test_cmd} {' '.join(instance.test_directives)}", config.test_timeout_s)
        result.test_seconds = round(run.seconds, 2)
        result.f2p_passed, result.p2p_passed, failing = grade(instance, parse_log(instance.log_parser, run.output))
        result.failing = failing[:20]
        if run.timed_out:
            result.status, result.message = "timeout", f"tests ran past {config.test_timeout_s:.0f} s"
        elif not patch.strip():
            result.status = "empty_patch"
        elif not failing:
            result.resolved, result.status = True, "resolved"
        if not result.resolved and not result.message:
            result.message = run.output[-1500:]
        return result
    except SetupError as exc:
        result.status, result.message = "setup_error", str(exc)[-2000:]
        return result
    finally:
        if env.src.exists() and (env.home / ".ready").exists():
            env.reset()
