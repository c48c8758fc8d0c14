"""The harness check: a minimal timing loop with no xsched-ops code.

Times one model (torchvision ResNet-18, batch 1, fp32 by default) on an explicit CUDA stream,
the way the workload's torch backend runs a request: input already on the device, eval mode,
inference_mode, forward on the stream, stream.synchronize(). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torchvision


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=800)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--interval-ms", type=float, default=50.0,
                        help="pause between requests, as an open-loop generator at 20 req/s leaves the GPU idle")
    args = parser.parse_args()
    device = torch.device("cuda")
    model = getattr(torchvision.models, args.model)(weights=None).to(device).eval()
    stream = torch.cuda.Stream(device=device)
    with torch.cuda.stream(stream):
        inputs = torch.randn(args.batch, 3, 224, 224, device=device)
    stream.synchronize()
    times_ms = []
    with torch.inference_mode(), torch.cuda.stream(stream):
        for iteration in range(args.warmup + args.iterations):
            started = time.perf_counter()
            model(inputs)
            stream.synchronize()
            elapsed = (time.perf_counter() - started) * 1000.0
            if iteration >= args.warmup:
                times_ms.append(elapsed)
            if args.interval_ms > 0:
                time.sleep(args.interval_ms / 1000.0)
    times_ms.sort()

    def quantile(q: float) -> float:
        return times_ms[min(len(times_ms) - 1, int(q * len(times_ms)))]

    print(json.dumps({
        "bare_loop": True, "model": args.model, "batch": args.batch, "iterations": len(times_ms),
        "interval_ms": args.interval_ms, "p50_ms": statistics.median(times_ms), "p90_ms": quantile(0.90),
        "p99_ms": quantile(0.99), "max_ms": times_ms[-1], "mean_ms": statistics.fmean(times_ms),
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
    }))


if __name__ == "__main__":
    main()
