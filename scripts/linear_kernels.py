"""One linear layer of the 0.5B (896 -> 4,864) through each CPU weight path, by rows: bf16 dense, float32 dense,
and fp16 weights through fbgemm's fp16 GEMM (float32 activations; ``inference/models/quant_linear.Fp16Linear``).

    python scripts/linear_kernels.py --threads 2
        prints one JSON object per row count: median milliseconds of 11 calls after 3 warm-ups.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch
import torch.nn.functional as F


def median_ms(call, x: torch.Tensor, repeats: int = 11) -> float:
    for _ in range(3):
        call(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-features", type=int, default=4864)
    parser.add_argument("--in-features", type=int, default=896)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    w16 = (torch.randn(args.out_features, args.in_features) * 0.02).to(torch.bfloat16)  # a bf16 checkpoint
    w32 = w16.float()
    packed = torch.ops.quantized.linear_prepack_fp16(w32, None)
    paths = {"bf16": (lambda x: F.linear(x, w16), torch.bfloat16),
             "float32": (lambda x: F.linear(x, w32), torch.float32),
             "fp16_weights": (lambda x: torch.ops.quantized.linear_dynamic_fp16(x, packed), torch.float32)}
    for rows in (1, 4, 16, 64, 256, 512):
        row = {"rows": rows, "threads": args.threads}
        for name, (call, dtype) in paths.items():
            row[f"{name}_ms"] = median_ms(call, torch.randn(rows, args.in_features, dtype=dtype))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
