"""`scan` never raises and always returns ranges inside the text."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from security import ScanConfig, scan
from security.snippet import split_lines

FAST = ScanConfig(licence_index=False)


def assert_ranges_inside(text: str, findings) -> None:
    lines = split_lines(text) or [""]
    for f in findings:
        assert (f.start_line, f.start_col) <= (f.end_line, f.end_col)
        assert 0 <= f.end_line < len(lines) and f.end_col <= len(lines[f.end_line])


python_like = st.lists(st.sampled_from([
    "def f(x):", "    return x", "import os", 'os.system("ls " + x)', "if (a,", "  ]", "\t", "'''", "\\",
    'k = "AKIAZ3MSJV5WQ6KXNP4R"', "class A:", "x = [", "@", "rm -rf /", "\r", "é", "\x0c", "# c",
]), max_size=15).map("\n".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), python_like))
def test_never_raises_on_text(text: str):
    assert_ranges_inside(text, scan(text, config=FAST))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200))
def test_never_raises_on_bytes(data: bytes):
    scan(data, config=FAST)


def test_adversarial_inputs():
    assert scan(None)[0].rule_id == "scan.error"
    assert scan(b"\x00\x01\x02ELF")[0].message.startswith("input looks binary")
    huge = "x = 1\n" * 50_000
    found = scan(huge, config=ScanConfig(max_chars=10_000, licence_index=False))
    assert found[0].rule_id == "scan.truncated" and "10,000" in found[0].message
    for text in ["(" * 3000, "[" * 90 + "]" * 90, "x = " + "-" * 20000 + "1", "a" * 100_000,
                 "def f():\n" + "".join("    " * i + "if x:\n" for i in range(1, 120)), "1+" * 30000 + "1"]:
        assert_ranges_inside(text, scan(text, config=FAST))
