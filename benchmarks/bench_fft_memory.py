"""Peak memory and time of one training step of a 10-layer UnrolledLandweber.

Variants, measured in the same run (each in a fresh subprocess so that the
CPU peak resident memory, ``ru_maxrss``, belongs to that variant alone):

- ``autograd``: layer by layer, plain autograd through ``torch.fft`` (the reference);
- ``custom``:   layer by layer through the memory-lean custom autograd functions
  (``fourier_multiply`` for A and A^H, ``filter_half_spectrum`` for the learned preconditioner);
- ``fused``:    the whole unrolled net as one spectral filter (Landweber filter
  factors, two FFTs; exact for a circular convolution).

A training step is forward + MSE loss + backward + Adam step. The CPU peak is
``ru_maxrss`` after the first step minus ``ru_maxrss`` after building the data
and the network (the data, network and torch itself are in the baseline),
with ``MALLOC_MMAP_THRESHOLD_`` fixed so that freed tensors go back to the OS.
"saved for backward" is the exact size of the distinct tensors autograd keeps
(``saved_tensors_hooks``). On CUDA ``torch.cuda.max_memory_allocated`` is
reported as well. Times: median of round-robin steps in one process.

Usage: ``python benchmarks/bench_fft_memory.py [--quick] [--device cuda]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = ("autograd", "custom", "fused")


def build(args: argparse.Namespace, variant: str, precondition: bool):
    """Data, network and a training-step closure for one variant."""
    import torch

    from physinv import psf
    from physinv.nets import UnrolledLandweber
    from physinv.operators import Convolution

    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    shape = (args.size, args.size)
    A = Convolution(psf.gaussian(2.0, 15), shape).to(dev)
    x = torch.rand(args.batch, 1, *shape, generator=g).to(dev)
    with torch.no_grad():
        y = A(x) + 0.01 * torch.randn(x.shape, generator=g).to(dev)
    net = UnrolledLandweber(A, args.layers, precondition=precondition, fft_path=variant).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = (net(y) - x).square().mean()
        loss.backward()
        opt.step()
        return loss

    return step, x


def worker(args: argparse.Namespace) -> dict:
    """Peak memory of the first training step of one variant (run in a fresh process)."""
    import torch

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    step, x = build(args, args.variant, args.precondition)
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    saved: dict = {}

    def pack(t):
        saved[(t.data_ptr(), t.dtype, tuple(t.shape))] = t.numel() * t.element_size()
        return t

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    if cuda:
        torch.cuda.synchronize()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"variant": args.variant, "precondition": args.precondition,
           "cpu_peak_mib": (peak - base) / 1024.0, "saved_mib": sum(saved.values()) / 2**20}
    if cuda:
        out["cuda_peak_mib"] = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20
    out["image_mib"] = x.numel() * 4 / 2**20
    return out


def timings(args: argparse.Namespace) -> dict:
    """Median step time of every variant, measured round-robin in this process (fair under load)."""
    import torch

    torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    steps = {(v, pre): build(args, v, pre)[0] for pre in (False, True) for v in VARIANTS}
    for st in steps.values():  # warm-up (FFT plans, allocator)
        st()
    times: dict = {k: [] for k in steps}
    for _ in range(args.repeats):
        for k, st in steps.items():
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            st()
            if cuda:
                torch.cuda.synchronize()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="batch 4 x 128 x 128, 3 timed rounds")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--layers", type=int, default=10)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", default="custom", help=argparse.SUPPRESS)
    p.add_argument("--precondition", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.batch, args.size, args.repeats = 4, 128, 3
    if args.worker:
        print(json.dumps(worker(args)))
        return
    rows = []
    here = os.path.dirname(os.path.abspath(__file__))
    # A fixed mmap threshold makes glibc return every large freed block to the OS, so that
    # ru_maxrss tracks the peak of live tensors rather than allocator fragmentation.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072",
               PYTHONPATH=os.path.dirname(here) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for pre in (False, True):
        for v in VARIANTS:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--variant", v,
                   "--batch", str(args.batch), "--size", str(args.size), "--layers", str(args.layers),
                   "--repeats", str(args.repeats), "--threads", str(args.threads), "--device", args.device]
            if pre:
                cmd.append("--precondition")
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    t = timings(args)
    for r in rows:
        r["step_s"] = t[(r["variant"], r["precondition"])]
    print(f"UnrolledLandweber, {args.layers} layers, batch {args.batch}x1x{args.size}x{args.size} float32, "
          f"device {args.device}, {args.threads} threads; one image batch = {rows[0]['image_mib']:.1f} MiB; "
          f"time: median of {args.repeats} round-robin steps")
    cuda = "cuda_peak_mib" in rows[0]
    head = "| preconditioner | path | saved for backward (MiB) | CPU peak (MiB) | peak / autograd |"
    if cuda:
        head += " CUDA peak (MiB) | CUDA peak / autograd |"
    head += " step time (s) | time / autograd |"
    print(head)
    print("|" + "|".join(["---"] * (head.count("|") - 1)) + "|")
    for pre in (False, True):
        ref = next(r for r in rows if r["precondition"] == pre and r["variant"] == "autograd")
        for r in (r for r in rows if r["precondition"] == pre):
            line = (f"| {'learned' if pre else 'none'} | {r['variant']} | {r['saved_mib']:.1f} | "
                    f"{r['cpu_peak_mib']:.1f} | "
                    f"{r['cpu_peak_mib'] / ref['cpu_peak_mib']:.2f} |")
            if cuda:
                line += f" {r['cuda_peak_mib']:.1f} | {r['cuda_peak_mib'] / ref['cuda_peak_mib']:.2f} |"
            line += f" {r['step_s']:.3f} | {r['step_s'] / ref['step_s']:.2f} |"
            print(line)


if __name__ == "__main__":
    main()
