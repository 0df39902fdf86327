"""Put Triton in interpreter mode for CPU tests; imported by ``test_triton*.py`` before any kernel module.

``TRITON_INTERPRET`` is read when ``@triton.jit`` decorates a kernel, so it must be set before
``inference.attention.triton_*`` is first imported. On a CUDA machine the real compiler is used.

Triton 3.6's interpreter converts 1-element loop bounds with ``int(array)``, which numpy >= 2.4 refuses
(Triton 3.8 squeezes first); its ``tl.dot`` multiplies bf16 operands as raw 16-bit integers; and it
casts integers to bf16 (and back) as if bf16 were an integer type.
:func:`_patch_interpreter` fixes both for interpreted runs only (the compiled path is untouched).
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

triton = pytest.importorskip("triton")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _patch_interpreter() -> None:
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor
    if getattr(original, "_codeloop_patched", False):
        return

    def patched(tensor, scope):  # noqa: ANN001 - mirrors the interpreter's private signature
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patched._codeloop_patched = True
    interpreter._patch_lang_tensor = patched
    builder = interpreter.InterpreterBuilder
    create_dot = builder.create_dot

    def widened(handle):  # noqa: ANN001, ANN202
        if handle.dtype.scalar != triton.language.bfloat16:
            return handle
        data = interpreter._convert_float(handle.data, handle.dtype.scalar, triton.language.float32, None)
        return interpreter.TensorHandle(data.view(interpreter.np.float32), triton.language.float32)

    builder.create_dot = lambda self, a, b, d, *rest: create_dot(self, widened(a), widened(b), d, *rest)
    cast_impl = builder.cast_impl

    def cast_via_fp32(self, src, dst_type):  # noqa: ANN001, ANN202
        bf16, fp32 = triton.language.bfloat16, triton.language.float32
        src_ty, dst_ty = src.dtype.scalar, dst_type.scalar
        if dst_ty == bf16 and src_ty not in (bf16, fp32):
            return cast_impl(self, cast_impl(self, src, fp32), dst_type)
        if src_ty == bf16 and dst_ty not in (bf16, fp32):
            return cast_impl(self, cast_impl(self, src, fp32), dst_type)
        return cast_impl(self, src, dst_type)

    builder.cast_impl = cast_via_fp32


if os.environ.get("TRITON_INTERPRET") == "1":
    _patch_interpreter()
