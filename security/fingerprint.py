"""Winnowed k-gram fingerprints of normalised Python tokens (MOSS-style, Schleimer et al. 2003).

Normalisation makes renaming and literal edits invisible: every identifier becomes ``V``, every
literal ``L``; keywords, operators and statement ends are kept; comments, blank lines and
indentation are dropped. A k-gram is ``k`` consecutive normalised tokens; its hash is a 64-bit
polynomial hash of stable per-token codes, mixed (splitmix64's finaliser) and cut to its top 32
bits, which is enough to tell millions of indexed k-grams apart and halves the index. Winnowing keeps the minimum hash of every window of
``w`` consecutive k-grams, which guarantees that any shared run of ``w + k - 1`` tokens shares
at least one fingerprint, while keeping about ``2 / (w + 1)`` of the k-grams.

String literals that normalisation hides are fingerprinted apart: each literal of at least
``min_literal_chars`` characters (whitespace runs collapsed, so re-indenting a docstring changes
nothing) gets a hash of its text. Renaming identifiers leaves them intact, and a shared docstring or
message is what tells a copied function that is mostly docstring from boilerplate of the same shape.
"""

from __future__ import annotations

import hashlib
import io
import keyword
import textwrap
import tokenize
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .config import DEFAULT_K, DEFAULT_MIN_LITERAL_CHARS, DEFAULT_W

_BASE = np.uint64(1_000_003)
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
            tokenize.ENDMARKER, tokenize.ERRORTOKEN}
_LITERALS = {tokenize.NUMBER, tokenize.STRING}
_FSTRING_PARTS = {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
MAX_RESTARTS = 50


@dataclass(frozen=True)
class Fingerprints:
    """Selected k-gram hashes with the 0-based source lines each k-gram starts and ends on and the
    index of its first normalised token (k-gram ``i`` covers tokens ``start_tokens[i]`` to
    ``start_tokens[i] + k - 1``); apart, the hashes of long string literals and their lines.

    Invariant: the first four arrays have one entry per k-gram fingerprint, in source order; the
    last two one per long literal, in source order. ``len`` counts k-gram fingerprints only.
    """

    hashes: np.ndarray  # [n] uint32
    start_lines: np.ndarray  # [n] int64
    end_lines: np.ndarray  # [n] int64
    start_tokens: np.ndarray  # [n] int64
    literal_hashes: np.ndarray  # [m] uint32
    literal_lines: np.ndarray  # [m] int64

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass(frozen=True)
class TokenCodes:
    """What fingerprints are computed from, whatever ``k``, ``w`` and literal length: stable codes of
    the normalised tokens with their 0-based lines, and every string literal's hash, collapsed
    length (characters) and line."""

    codes: np.ndarray  # [n] uint64
    lines: np.ndarray  # [n] int64
    literal_hashes: np.ndarray  # [m] uint32
    literal_chars: np.ndarray  # [m] int64
    literal_lines: np.ndarray  # [m] int64


def normalised_tokens(source: str) -> tuple[list[str], list[int]]:
    """Normalised tokens of ``source`` and the 0-based line of each.

    Partial or broken code is fine: tokenizing restarts after a line that fails.
    """
    tokens, token_lines, _ = _scan(source)
    return tokens, token_lines


def _scan(source: str) -> tuple[list[str], list[int], list[tuple[str, int]]]:
    """Normalised tokens, their lines, and each string literal's collapsed text with its line."""
    lines = textwrap.dedent(source).splitlines(keepends=True)
    tokens: list[str] = []
    token_lines: list[int] = []
    literals: list[tuple[str, int]] = []
    first = 0
    for _ in range(MAX_RESTARTS):
        failed_at = _tokenize_from(lines, first, tokens, token_lines, literals)
        if failed_at is None or failed_at + 1 >= len(lines):
            break
        first = failed_at + 1
    return tokens, token_lines, literals


def _tokenize_from(lines: list[str], first: int, tokens: list[str], token_lines: list[int],
                   literals: list[tuple[str, int]]) -> int | None:
    """Append normalised tokens (and string literals) of ``lines[first:]``; return the failing line
    index or ``None``."""
    text = textwrap.dedent("".join(lines[first:]))
    last_line = first
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            last_line = first + tok.start[0] - 1
            norm = _normalise(tok)
            if norm is not None:
                tokens.append(norm)
                token_lines.append(last_line)
            if tok.type == tokenize.STRING:
                literals.append((" ".join(tok.string.lstrip("rRbBuU").strip("\"'").split()), last_line))
    except (tokenize.TokenError, SyntaxError, ValueError, RecursionError):
        return last_line
    return None


def _normalise(tok: tokenize.TokenInfo) -> str | None:
    if tok.type in _SKIPPED:
        return None
    if tok.type in _LITERALS or tok.type in _FSTRING_PARTS:
        return "L"
    if tok.type == tokenize.NAME:
        return tok.string if keyword.iskeyword(tok.string) else "V"
    if tok.type == tokenize.NEWLINE:
        return ";"
    return tok.string


def fingerprints(source: str, k: int = DEFAULT_K, w: int = DEFAULT_W,
                 min_literal_chars: int | None = DEFAULT_MIN_LITERAL_CHARS) -> Fingerprints:
    """Winnowed fingerprints of ``source`` (no k-gram ones when it has fewer than ``k`` tokens) and
    its literals of at least ``min_literal_chars`` characters (none with ``None``)."""
    return fingerprints_of_codes(token_codes(source), k, w, min_literal_chars)


def token_codes(source: str) -> TokenCodes:
    """``source``'s token codes and literal hashes (``TokenCodes``)."""
    tokens, token_lines, literals = _scan(source)
    codes = np.fromiter((_code(t) for t in tokens), dtype=np.uint64, count=len(tokens))
    literal_hashes = np.array([_literal_hash(text) for text, _ in literals], dtype=np.uint32)
    return TokenCodes(codes, np.asarray(token_lines, dtype=np.int64), literal_hashes,
                      np.array([len(text) for text, _ in literals], dtype=np.int64),
                      np.array([line for _, line in literals], dtype=np.int64))


def fingerprints_of_codes(tokens: TokenCodes, k: int, w: int, min_literal_chars: int | None) -> Fingerprints:
    """Winnowed fingerprints of ``tokens`` (from ``token_codes``) and its literals of at least
    ``min_literal_chars`` characters (none with ``None``)."""
    long = tokens.literal_chars >= (min_literal_chars if min_literal_chars is not None else np.iinfo(np.int64).max)
    literal_hashes, literal_lines = tokens.literal_hashes[long], tokens.literal_lines[long]
    codes, lines = tokens.codes, tokens.lines
    n = len(codes) - k + 1
    if n <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return Fingerprints(np.zeros(0, dtype=np.uint32), empty, empty, empty, literal_hashes, literal_lines)
    hashes = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            hashes = hashes * _BASE + codes[j: j + n]
    hashes = _mix(hashes)
    picked = _winnow(hashes, w)
    return Fingerprints(hashes[picked], lines[picked], lines[picked + k - 1], picked.astype(np.int64),
                        literal_hashes, literal_lines)


def _literal_hash(text: str) -> int:
    """32-bit hash of a literal's collapsed text (without prefix and quotes)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "little")


@lru_cache(maxsize=4096)
def _code(token: str) -> int:
    """Stable code of a normalised token (few distinct ones: keywords, operators, V, L)."""
    return zlib.crc32(token.encode())


def _mix(hashes: np.ndarray) -> np.ndarray:
    """Top 32 bits of splitmix64's finaliser of each uint64 hash, as uint32."""
    with np.errstate(over="ignore"):
        h = hashes ^ (hashes >> np.uint64(30))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h = h ^ (h >> np.uint64(27))
        h = h * np.uint64(0x94D049BB133111EB)
        h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(32)).astype(np.uint32)


def _winnow(hashes: np.ndarray, w: int) -> np.ndarray:
    """Indices of the rightmost minimum of every window of ``w`` hashes, deduplicated, in order."""
    if len(hashes) <= w:
        return np.array([len(hashes) - 1 - int(np.argmin(hashes[::-1]))])
    windows = np.lib.stride_tricks.sliding_window_view(hashes, w)
    rightmost = w - 1 - np.argmin(windows[:, ::-1], axis=1)
    return np.unique(np.arange(len(windows)) + rightmost)
