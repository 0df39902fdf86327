"""Incremental detokenization: whole UTF-8 characters only, stop strings cut and held back."""

from inference.detokenizer import IncrementalDetokenizer
from tests.inference.engine_fakes import ByteTokenizer


def feed(detok, data: bytes):
    deltas = []
    for byte in data:
        detok.add_token(byte)
        deltas.append(detok.pop_delta())
    return deltas


def test_multibyte_characters_are_never_split():
    detok = IncrementalDetokenizer(ByteTokenizer(), list(b"prompt"))
    deltas = feed(detok, "aé€😀b".encode())
    assert all("\ufffd" not in d for d in deltas)
    assert deltas == ["a", "", "é", "", "", "€", "", "", "", "😀", "b"]
    assert detok.text == "aé€😀b"


def test_incomplete_tail_is_flushed_as_replacement_at_the_end():
    detok = IncrementalDetokenizer(ByteTokenizer(), [])
    feed(detok, b"ok\xe2\x82")
    assert detok.text == "ok"
    detok.flush()
    assert detok.text == "ok\ufffd" and detok.pop_delta(final=True) == "\ufffd"


def test_stop_string_is_cut_and_partial_matches_are_held_back():
    detok = IncrementalDetokenizer(ByteTokenizer(), [], stop=["END", "\n\n"])
    streamed = "".join(feed(detok, b"abc EN"))
    assert streamed == "abc " and detok.text == "abc EN"  # "EN" may still become "END"
    assert "".join(feed(detok, b"d E")) == "ENd "
    assert not detok.stopped
    detok.add_token(ord("N"))
    assert detok.add_token(ord("D"))
    assert detok.stopped and detok.text == "abc ENd "
    assert detok.pop_delta() == ""
    assert detok.add_token(ord("x")) and detok.text == "abc ENd "


def test_stop_string_spanning_tokens_of_a_real_tokenizer():
    from inference.models.tiny import make_tokenizer

    tok = make_tokenizer()
    text = "def fib(n):\n    return fib(n - 1) + fib(n - 2)  # ünïcødé ✓\n"
    ids = tok.encode(text)
    detok = IncrementalDetokenizer(tok, tok.encode("prompt: "))
    streamed = ""
    for token_id in ids:
        detok.add_token(token_id)
        streamed += detok.pop_delta()
    detok.flush()
    streamed += detok.pop_delta(final=True)
    assert streamed == detok.text == tok.decode(ids, skip_special_tokens=True)
    stopper = IncrementalDetokenizer(tok, [], stop=["return fib"])
    for token_id in ids:
        if stopper.add_token(token_id):
            break
    assert stopper.text == "def fib(n):\n    "
