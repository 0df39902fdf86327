"""A byte tokenizer and a paged fake model runner for engine bookkeeping tests.

The fake "model" keeps token ids in a paged cache laid out exactly like the real KV cache (slot =
block_id * block_size + pos % block_size) and derives each next token from a hash of the whole context it
reads back through the block table. A wrong block table, a missed copy-on-write or a bad prefix-cache hit
therefore changes the output, just as it would with real KV.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from inference.batch import SampledToken, StepBatch
from inference.sampling import SamplingParams

EOS = 256
ALPHABET = b"abcdefgh ij\n"


class ByteTokenizer:
    """UTF-8 bytes as token ids 0..255, plus EOS = 256 (a special token, skipped when decoding)."""

    eos_token_id = EOS

    def encode(self, text: str) -> list[int]:
        return list(text.encode())

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


@dataclass
class FakeModelConfig:
    vocab_size: int = 257


def next_token(context: list[int], params: SamplingParams, sample_index: int, num_generated: int,
               eos_every: int) -> int:
    """The fake model: a deterministic function of the context (and of the seed when sampling)."""
    h = hashlib.blake2b(repr(context).encode(), digest_size=8)
    if not params.greedy:
        seed = params.seed if params.seed is not None else random.getrandbits(32)
        h.update(repr((seed, sample_index, num_generated)).encode())
    value = int.from_bytes(h.digest(), "little")
    if eos_every and value % eos_every == 0:
        return EOS
    return ALPHABET[value % len(ALPHABET)]


def reference_tokens(prompt: list[int], params: SamplingParams, sample_index: int = 0,
                     eos_every: int = 0, max_model_len: int = 10**9) -> list[int]:
    """What the fake model generates for one sample without any paging (ignores stop strings)."""
    tokens = list(prompt)
    out: list[int] = []
    while True:
        tok = next_token(tokens, params, sample_index, len(out), eos_every)
        tokens.append(tok)
        out.append(tok)
        stop = tok in params.stop_token_ids or (tok == EOS and not params.ignore_eos)
        if stop or len(out) >= params.max_tokens or len(tokens) >= max_model_len:
            return out


class FakeRunner:
    """Implements the ModelRunner API over the paged token cache described above."""

    def __init__(self, block_size: int = 4, max_model_len: int = 256, eos_every: int = 0,
                 bytes_per_block: int = 1000) -> None:
        self.block_size = block_size
        self.max_model_len = max_model_len
        self.eos_every = eos_every
        self.tokenizer = ByteTokenizer()
        self.model_config = FakeModelConfig()
        self.eos_token_ids = {EOS}
        self._bytes_per_block = bytes_per_block
        self.slots: list[int | None] = []
        self.batches: list[StepBatch] = []

    def bytes_per_block(self) -> int:
        return self._bytes_per_block

    def allocate_kv(self, num_blocks: int) -> None:
        self.num_blocks = num_blocks
        self.slots = [None] * (num_blocks * self.block_size)

    def execute(self, batch: StepBatch, check=None) -> list[SampledToken]:
        if check is not None:  # like the model: before its first layer
            check()
        self.batches.append(batch)
        bs = self.block_size
        for copy in batch.copies:
            self.slots[copy.dst * bs:(copy.dst + 1) * bs] = self.slots[copy.src * bs:(copy.src + 1) * bs]
        for chunk in batch.chunks:
            assert len(chunk.block_table) * bs >= chunk.num_computed_tokens + len(chunk.token_ids)
            for i, tok in enumerate(chunk.token_ids):
                pos = chunk.num_computed_tokens + i
                self.slots[chunk.block_table[pos // bs] * bs + pos % bs] = tok
        out = []
        for chunk in batch.chunks:
            if not chunk.sample:
                continue
            end = chunk.num_computed_tokens + len(chunk.token_ids)
            context = [self.slots[chunk.block_table[p // bs] * bs + p % bs] for p in range(end)]
            assert None not in context
            drafts = context[end - chunk.num_draft_tokens:]
            tokens = []
            for i in range(chunk.num_draft_tokens + 1):  # row i sees the context up to draft i - 1
                row_end = end - chunk.num_draft_tokens + i
                tok = next_token(context[:row_end], chunk.params, chunk.sample_index, chunk.num_generated + i,
                                 self.eos_every)
                tokens.append(tok)
                if i == len(drafts) or tok != drafts[i]:
                    break
            out.append(SampledToken(chunk.seq_id, tokens[-1], logprob=-float(tokens[-1] % 7),
                                    accepted=tuple(tokens[:-1]),
                                    accepted_logprobs=tuple(-float(t % 7) for t in tokens[:-1])))
        return out
