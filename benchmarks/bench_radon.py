"""Radon benchmark: physinv vs scikit-image in the same process.

Usage::

    python benchmarks/bench_radon.py            # full run (also the 512x512 / 360-angle memory check)
    python benchmarks/bench_radon.py --quick    # fewer repeats, no 512x512 memory check

Times per image (best of ``--repeats`` for both libraries) for 256x256 images with 180 angles,
batch 8, 2 torch threads:

* forward projection vs ``skimage.transform.radon``,
* adjoint (exact) vs ``iradon(filter_name=None)`` (unfiltered back-projection),
* FBP (ramp) vs ``iradon`` (ramp).

scikit-image works image by image, so its per-image time is measured on
``--sk-images`` images. The memory check builds a 512x512 / 360-angle
operator in a fresh subprocess and reports its peak resident memory
(``ru_maxrss``). Where CUDA is available it also times batch 128 of 256x256
images with 256 angles (float32) and prints images per second.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch


def best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


MEMORY_SNIPPET = r"""
import json, resource, sys, time, torch
torch.set_num_threads(2)
from physinv.operators import Radon
n, n_ang = int(sys.argv[1]), int(sys.argv[2])
t0 = time.perf_counter()
A = Radon(n, n_ang)
build = time.perf_counter() - t0
rss_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
x = torch.rand(4, n, n)
t0 = time.perf_counter()
y = A(x)
z = A.adjoint(y)
apply = (time.perf_counter() - t0) / 4
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(build_s=build, matrices=A.nbytes, nnz=A.nnz, rss_build=rss_build,
                      rss=rss, fwd_adj_per_image_s=apply)))
"""


def memory_check(n, n_ang):
    out = subprocess.run([sys.executable, "-c", MEMORY_SNIPPET, str(n), str(n_ang)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--angles", type=int, default=180)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--sk-images", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    sk_images = args.sk_images or (2 if args.quick else 4)
    torch.set_num_threads(args.threads)

    from skimage.data import shepp_logan_phantom
    from skimage.transform import iradon, radon, resize

    from physinv.operators import Radon
    from physinv.solvers import fbp

    n, n_ang, batch = args.size, args.angles, args.batch
    theta = np.linspace(0.0, 180.0, n_ang, endpoint=False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; image {n}x{n}, "
          f"{n_ang} angles, batch {batch}, best of {repeats}")

    t0 = time.perf_counter()
    A = Radon(n, theta)
    build = time.perf_counter() - t0
    print(f"build (first construction of this geometry): {build:.2f} s; A and A^T: "
          f"{A.nbytes / 2**20:.0f} MiB, nnz {A.nnz:,}")

    img = resize(shepp_logan_phantom(), (n, n), anti_aliasing=True)
    rng = np.random.default_rng(0)
    imgs = np.stack([img * rng.uniform(0.5, 1.0) for _ in range(batch)])
    x = torch.from_numpy(imgs).float()
    with torch.no_grad():
        y = A(x)
        rows = []
        t_fwd = best_time(lambda: A(x), repeats) / batch
        t_adj = best_time(lambda: A.adjoint(y), repeats) / batch
        t_fbp = best_time(lambda: fbp(y, A), repeats) / batch
    sk_sino = [radon(imgs[i], theta, circle=True) for i in range(sk_images)]
    s_fwd = best_time(lambda: [radon(imgs[i], theta, circle=True) for i in range(sk_images)],
                      repeats) / sk_images
    s_adj = best_time(lambda: [iradon(s, theta, filter_name=None, circle=True) for s in sk_sino],
                      repeats) / sk_images
    s_fbp = best_time(lambda: [iradon(s, theta, filter_name="ramp", circle=True) for s in sk_sino],
                      repeats) / sk_images
    rows = [("forward", t_fwd, "radon", s_fwd), ("adjoint", t_adj, "iradon(filter_name=None)", s_adj),
            ("FBP (ramp)", t_fbp, "iradon(ramp)", s_fbp)]
    print()
    print("| operation | physinv ms/image | scikit-image reference | skimage ms/image | speed-up |")
    print("|---|---:|---|---:|---:|")
    for name, t, ref, s in rows:
        print(f"| {name} | {1e3 * t:.1f} | {ref} | {1e3 * s:.1f} | {s / t:.1f}x |")

    # accuracy in the same run, for the record
    ref = radon(img, theta, circle=True).T
    ours = A(torch.from_numpy(img)).numpy()
    print(f"\nrelative L2 difference to skimage radon on Shepp-Logan: "
          f"{np.linalg.norm(ours - ref) / np.linalg.norm(ref):.2e}")

    if not args.quick:
        print("\nmemory: 512x512, 360 angles, fresh subprocess (build, then forward+adjoint of batch 4)")
        r = memory_check(512, 360)
        print(f"  build {r['build_s']:.1f} s, nnz {r['nnz']:,}, A and A^T {r['matrices'] / 2**30:.2f} GiB, "
              f"peak RSS after build {r['rss_build'] / 2**30:.2f} GiB, after use {r['rss'] / 2**30:.2f} GiB, "
              f"forward+adjoint {1e3 * r['fwd_adj_per_image_s']:.0f} ms/image")

    if torch.cuda.is_available():
        dev = torch.device("cuda")
        G = Radon(256, 256).to(dev)
        xg = torch.rand(128, 256, 256, device=dev)
        with torch.no_grad():
            yg = G(xg)
            G.adjoint(yg)
            torch.cuda.synchronize()

            def timed(fn):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(5):
                    fn()
                torch.cuda.synchronize()
                return (time.perf_counter() - t0) / 5

            tf = timed(lambda: G(xg))
            ta = timed(lambda: G.adjoint(yg))
        print(f"\nGPU {torch.cuda.get_device_name()}: batch 128, 256x256, 256 angles, float32: "
              f"forward {128 / tf:,.0f} images/s, adjoint {128 / ta:,.0f} images/s")
    else:
        print("\nno CUDA device: GPU section skipped")


if __name__ == "__main__":
    main()
