#!/usr/bin/env python3
"""PyTorch's bf16 autocast on the CPU, for comparing with `capsid bench --precision bf16`.

Runs ../shared/bench/torch_reference.py (the same networks, input, loss and timing) inside
`torch.autocast("cpu", dtype=torch.bfloat16)`: convolutions and matrix products in bf16 (oneDNN,
AVX512-BF16/AMX where the CPU has them), the rest as autocast decides, f32 weights and Adam.
Arguments are torch_reference.py's. Prints its JSON line with "precision": "bf16-autocast".

Run: /tmp/torch-venv/bin/python bench/torch_bf16.py --model unet --patch 32 --batch 4 --threads 2
"""
import contextlib
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "bench"))
import torch  # noqa: E402
import torch_reference  # noqa: E402

out = io.StringIO()
with contextlib.redirect_stdout(out), torch.autocast("cpu", dtype=torch.bfloat16):
    torch_reference.main()
for line in out.getvalue().splitlines():
    try:
        rec = json.loads(line)
    except ValueError:
        print(line)
        continue
    rec["precision"] = "bf16-autocast"
    print(json.dumps(rec))
