"""Activation memory and step time of deep unrolled networks, with and without gradient checkpointing.

Networks (defaults: 128x128 images, batch 4, float32, CPU):

- ``UnrolledHQS``: 8 layers, the shipped denoiser as the (shared, trainable) prior,
  a circular Gaussian blur (exact data step through the FFT);
- ``LearnedPrimalDual``: 10 iterations, width 32, 5 primal and 5 dual channels,
  a parallel-beam ``Radon`` operator with 64 angles;
- ``UnrolledISTA`` with ``transform="learned"`` (8 layers, 16 channels);
- ``UnrolledLandweber`` (10 layers, learned preconditioner), which has no
  checkpoint option: its row shows what one of its layers keeps.

"Saved for backward" is measured deterministically: the bytes of the distinct
storages that autograd keeps during one forward pass (``saved_tensors_hooks``
around the forward and the loss), without the tensors that existed before the
step (parameters, the operator's constants, the data), after one warm-up step
that fills the networks' caches. With checkpointing it is what the checkpoints
keep (each layer's input) plus what lies outside them. The step time (forward,
MSE loss, backward, Adam step) is the median of round-robin repeats, so both
variants see the same machine load; their ratio is the price of recomputation.

Usage: ``python benchmarks/bench_checkpoint_memory.py [--quick] [--threads N] [--repeats N]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import warnings
from collections.abc import Callable

import torch

from physinv import psf
from physinv.nets import LearnedPrimalDual, UnrolledHQS, UnrolledISTA, UnrolledLandweber
from physinv.operators import Convolution, Radon


def build(name: str, checkpoint: bool, size: int, batch: int, depth: int
          ) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The network ``name``, data ``y`` and target ``x`` (seeded: both variants get the same problem)."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if name == "LearnedPrimalDual":
        A = Radon(size, 64)
        net = LearnedPrimalDual(A, n_iter=depth, checkpoint=checkpoint)
    else:
        A = Convolution(psf.gaussian(2.0, 15), (size, size))
        if name == "UnrolledHQS":
            net = UnrolledHQS(A, n_layers=depth, noise_sigma=0.01, checkpoint=checkpoint)
        elif name == "UnrolledISTA":
            net = UnrolledISTA(A, depth, transform="learned", lam=1e-3, channels=16, checkpoint=checkpoint)
        else:
            net = UnrolledLandweber(A, depth, precondition=True)
    x = torch.rand(batch, size, size, generator=g)
    if name == "LearnedPrimalDual":
        x = x * A.circle_mask()  # what the parallel-beam projection sees
    with torch.no_grad():
        y = A(x)
        y = y + 0.01 * torch.randn(y.shape, generator=g)
    return net.train(), y, x


def saved_bytes(net: torch.nn.Module, y: torch.Tensor, x: torch.Tensor) -> int:
    """Bytes of the distinct new storages autograd keeps for backward in one forward + loss."""
    step(net, y, x)  # warm-up: operator and cast caches exist from here on
    gc.collect()
    before = set()
    with warnings.catch_warnings():  # isinstance on deprecated torch objects warns
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor) and obj.layout == torch.strided:
                    before.add(obj.untyped_storage().data_ptr())
            except Exception:  # noqa: BLE001 - objects gc cannot inspect safely are not tensors we made
                continue
    for p in net.parameters():
        before.add(p.untyped_storage().data_ptr())
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.layout == torch.strided:
            s = t.untyped_storage()
            if s.data_ptr() not in before:
                seen[s.data_ptr()] = s.nbytes()
        return t

    net.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = (net(y) - x).square().mean()
    loss.backward()
    return sum(seen.values())


def step(net: torch.nn.Module, y: torch.Tensor, x: torch.Tensor,
         opt: torch.optim.Optimizer | None = None) -> float:
    """One training step (forward, MSE, backward, optimizer step when given)."""
    net.zero_grad(set_to_none=True)
    loss = (net(y) - x).square().mean()
    loss.backward()
    if opt is not None:
        opt.step()
    return loss.item()


def step_times(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median time of each function, measured in interleaved rounds after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def measure(name: str, size: int, batch: int, depth: int, repeats: int) -> dict:
    """Saved bytes with and without checkpointing, their ratio, and the step-time ratio."""
    variants = (False,) if name == "UnrolledLandweber" else (False, True)
    row: dict = {"net": name, "depth": depth, "image_mib": batch * size * size * 4 / 2**20}
    fns = {}
    for ck in variants:
        net, y, x = build(name, ck, size, batch, depth)
        row[f"saved_mib_{'ck' if ck else 'plain'}"] = saved_bytes(net, y, x) / 2**20
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        fns["ck" if ck else "plain"] = (lambda n=net, a=y, b=x, o=opt: step(n, a, b, o))
    if repeats > 0:
        t = step_times(fns, repeats)
        row.update({f"step_s_{k}": v for k, v in t.items()})
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3, help="timed steps per variant (0: memory only)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="32x32, batch 2, 3 layers, 1 timed step")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    size, batch, repeats = (32, 2, 1) if args.quick else (args.size, args.batch, args.repeats)
    depths = {"UnrolledHQS": 8, "LearnedPrimalDual": 10, "UnrolledISTA": 8, "UnrolledLandweber": 10}
    rows = []
    print(f"{size}x{size}, batch {batch}, float32, {args.threads} thread(s); one image batch = "
          f"{batch * size * size * 4 / 2**20:.3f} MiB")
    print(f"{'network':<18} {'layers':>6} {'saved plain MiB':>16} {'per layer (images)':>18} "
          f"{'saved ckpt MiB':>15} {'ratio':>7} {'step plain s':>13} {'step ckpt s':>12} {'time ratio':>10}")

    def fmt(v: float | None, spec: str) -> str:
        return format(v, spec) if v is not None else format("-", spec.replace(".3f", "").replace(".2f", "")
                                                                  .replace(".1f", ""))

    for name, depth in depths.items():
        row = measure(name, size, batch, 3 if args.quick else depth, repeats)
        rows.append(row)
        plain, ck = row["saved_mib_plain"], row.get("saved_mib_ck")
        tp, tc = row.get("step_s_plain"), row.get("step_s_ck")
        per_layer = plain / row["depth"] / row["image_mib"]
        print(f"{name:<18} {row['depth']:>6} {plain:>16.2f} {per_layer:>18.1f} {fmt(ck, '>15.2f')} "
              f"{fmt(None if ck is None else plain / ck, '>7.1f')} {fmt(tp, '>13.3f')} {fmt(tc, '>12.3f')} "
              f"{fmt(None if tc is None or tp is None else tc / tp, '>10.2f')}", flush=True)
    return rows


if __name__ == "__main__":
    main()
