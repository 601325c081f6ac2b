#!/usr/bin/env python3
"""The PyTorch reference networks timed on a GPU, for `capsid bench --device wgpu|cuda`.

shared/bench/torch_reference.py times its networks on the CPU only. This script imports that file's
networks and loss (nothing re-written) and times the same two things on a CUDA device, with the
device synchronised before every clock read:
  * inference: forward pass without gradients, eval mode;
  * training step: forward + Dice/CE loss (+ 0.1 x reconstruction BCE for ucaps) + backward + Adam.

  python3 bench/torch_gpu.py --reference ../shared/bench/torch_reference.py --model ucaps --patch 64

Prints one JSON line in the reference's format plus "device", "tf32" and "cudnn_benchmark".
By default PyTorch runs float32 convolutions in TF32 on Ampere and later (cuDNN's
allow_tf32 is on); --no-tf32 turns that off for a plain-float32 comparison.
"""
import argparse
import importlib.util
import json
import statistics
import time


def load_reference(path):
    spec = importlib.util.spec_from_file_location("torch_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def median_ms(fn, sync, warmup, iters):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default="../shared/bench/torch_reference.py")
    ap.add_argument("--model", choices=["unet", "ucaps"], default="unet")
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--no-tf32", action="store_true", help="plain float32 convolutions and matmuls")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN pick algorithms by timing")
    a = ap.parse_args()

    ref = load_reference(a.reference)
    torch, F = ref.torch, ref.F
    dev = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = not a.no_tf32
    torch.backends.cuda.matmul.allow_tf32 = not a.no_tf32
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    torch.manual_seed(0)
    net = (ref.UNet3D if a.model == "unet" else ref.UCaps3D)(a.classes).to(dev)
    params = sum(p.numel() for p in net.parameters())
    x = torch.randn(a.batch, 1, a.patch, a.patch, a.patch, device=dev)
    y = torch.randint(0, a.classes, (a.batch, a.patch, a.patch, a.patch), device=dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def logits_of(out):
        return out[0] if isinstance(out, tuple) else out

    def infer():
        net.eval()
        with torch.no_grad():
            logits_of(net(x))

    def train():
        net.train()
        opt.zero_grad()
        out = net(x)
        loss = ref.dice_ce(logits_of(out), y, a.classes)
        if isinstance(out, tuple):
            loss = loss + 0.1 * F.binary_cross_entropy_with_logits(out[1], torch.sigmoid(x))
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize
    res = dict(model=a.model, patch=a.patch, batch=a.batch, classes=a.classes, threads=torch.get_num_threads(),
               params=params, infer_ms=round(median_ms(infer, sync, a.warmup, a.iters), 2),
               train_ms=round(median_ms(train, sync, a.warmup, a.iters), 2), torch=torch.__version__,
               device=torch.cuda.get_device_name(0), tf32=not a.no_tf32, cudnn_benchmark=a.cudnn_benchmark)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
