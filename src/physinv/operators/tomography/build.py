"""The threaded builder of the Radon system matrix pair ``A``, ``A^T`` (CSR).

``A^T`` (rows: pixels, in the tiled storage order of
:func:`~physinv.operators.tomography.geometry.storage_order`) is built block
by block of pixels on ``torch.get_num_threads()`` threads in two passes
(entry counts, then the weights written in place: no concatenation copies),
and ``A`` (rows: angle-major sinogram entries) is its transpose, a counting
sort in C.
"""

from __future__ import annotations

import functools
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .geometry import Geometry, pixel_mask, storage_order
from .kernel import kernel_parameters, kernel_weights

__all__ = ["System", "build_system", "build_transpose", "system_from_arrays", "to_torch_csr"]


class System:
    """The CSR pair ``A`` (rows: angle-major sinogram entries) and ``A^T`` (rows: pixels) as torch tensors.

    The pixel axis is stored in tiled order: position ``s`` holds pixel
    ``order[s]``, and pixel ``p`` is at position ``pos[p]``.
    """

    def __init__(self, A: torch.Tensor, AT: torch.Tensor, h: int, w: int) -> None:
        self.A, self.AT = A, AT
        self.nnz = int(A.values().numel())
        order = storage_order(h, w)
        pos = np.empty_like(order)
        pos[order] = np.arange(order.size)
        self.order, self.pos = torch.from_numpy(order), torch.from_numpy(pos)

    @property
    def nbytes(self) -> int:
        """Bytes of the values and column indices of both matrices."""
        per = self.A.values().element_size() + self.A.col_indices().element_size()
        return 2 * self.nnz * per


def to_torch_csr(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                 shape: tuple[int, int]) -> torch.Tensor:
    """A torch CSR tensor sharing the arrays (``indptr`` cast to the dtype of ``indices``).

    The arrays must satisfy the CSR invariants (the builder's output, or a
    cache file that passed
    :func:`~physinv.operators.tomography.cache.check_csr`): they are not
    checked again here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(indptr.astype(indices.dtype, copy=False)),
                                       torch.from_numpy(indices), torch.from_numpy(data),
                                       size=tuple(shape), check_invariants=False)


def build_transpose(geom: Geometry, progress: bool = False):
    """Build ``A^T`` (a :class:`scipy.sparse.csr_matrix`, float32) row block by row block.

    Each block is evaluated in float64 (positions) and float32 (weights) in
    cache-sized pieces on ``torch.get_num_threads()`` threads; the peak
    memory is about twice the final CSR pair's size of one matrix plus the other.
    """
    import scipy.sparse as sp

    h, w, angles, n_det = geom.h, geom.w, geom.angles, geom.n_det
    order = storage_order(h, w)
    inside = np.zeros(h * w, dtype=bool)
    inside[pixel_mask(h, w, geom.circle)] = True
    rows = np.flatnonzero(inside[order])  # storage positions of the pixels the operator sees
    pix = order[rows]  # their flat indices, in storage order
    n_pix, n_ang, n_img, m = pix.size, angles.size, h * w, angles.size * n_det
    th = np.deg2rad(angles)
    cos_t, sin_t = np.cos(th), np.sin(th)
    a64, b64, c64, half = kernel_parameters(angles)
    a = a64.astype(np.float32)[:, None]
    b = b64.astype(np.float32)[:, None]
    c = c64.astype(np.float32)[:, None]
    xs = (pix % w - w // 2).astype(np.float64)
    ys = (h // 2 - pix // w).astype(np.float64)
    centre = float(n_det // 2)
    offs = np.arange(3)
    col_base = (np.arange(n_ang, dtype=np.int64) * n_det)[:, None]
    big = max(m, n_img, n_pix * n_ang * 3) >= 2**31 - 1
    idx_dtype = np.int64 if big else np.int32
    step = max(1, 2**15 // n_ang)  # about 100k candidate entries per block

    offs32 = offs.astype(np.float32)
    offs_i = offs.astype(idx_dtype)
    col_base = col_base.astype(idx_dtype)

    def support(s0: int):
        s1 = min(s0 + step, n_pix)
        u = np.multiply.outer(xs[s0:s1], cos_t)
        u += np.multiply.outer(ys[s0:s1], sin_t)
        u += centre  # detector coordinate of each (pixel, angle), in bins
        fl = np.floor(u - half)  # bin fl + 1 is the first strictly inside the support
        d0 = fl - u
        d0 += 1  # offset of that bin from u, in (-half, 1 - half]
        r = (half - d0).astype(np.float32)  # candidate j (0, 1, 2) is inside iff j < r
        return fl, d0, r

    def positions(s0: int):
        fl, d0, r = support(s0)
        k = fl.astype(idx_dtype)[..., None] + (offs_i + 1)
        # unsigned view: one comparison checks 0 <= k < n_det
        keep = (k.view(np.uint32 if idx_dtype == np.int32 else np.uint64) < n_det)
        keep &= offs32 < r[..., None]
        return d0, k, keep

    def count(s0: int) -> np.ndarray:
        # the number of True in positions(s0)[2], per pixel, without the 3 candidates:
        # j in [max(0, -(fl + 1)), min(ceil(r) - 1, 2, n_det - 2 - fl)]
        fl, _, r = support(s0)
        hi = np.minimum(np.minimum(np.ceil(r).astype(np.float64) - 1, 2.0), n_det - 2 - fl)
        lo = np.maximum(-(fl + 1), 0.0)
        return np.maximum(hi - lo + 1, 0.0).sum(1).astype(np.int64)

    def fill(s0: int, data: np.ndarray, indices: np.ndarray, indptr_pix: np.ndarray) -> None:
        d0, k, keep = positions(s0)
        d = d0.astype(np.float32)[..., None] + offs32
        wts = kernel_weights(d, a, b, c)
        lo, hi = indptr_pix[s0], indptr_pix[min(s0 + step, n_pix)]
        data[lo:hi] = wts[keep]
        k += col_base
        indices[lo:hi] = k[keep]

    starts = list(range(0, n_pix, step))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * len(starts), desc="Radon: building the system matrix")
    # two passes (entry counts, then weights written in place): no concatenation copies
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        counts = np.zeros(n_pix, dtype=np.int64)
        for s0, cnt in zip(starts, pool.map(count, starts)):
            counts[s0:s0 + cnt.size] = cnt
            if bar is not None:
                bar.update()
        indptr_pix = np.zeros(n_pix + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr_pix[1:])
        nnz = int(indptr_pix[-1])
        data = np.empty(nnz, dtype=np.float32)
        indices = np.empty(nnz, dtype=idx_dtype)
        for _ in pool.map(functools.partial(fill, data=data, indices=indices,
                                            indptr_pix=indptr_pix), starts):
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    indptr = np.zeros(n_img + 1, dtype=np.int64)
    indptr[rows + 1] = counts
    np.cumsum(indptr, out=indptr)
    AT = sp.csr_matrix((data, indices, indptr.astype(idx_dtype)), shape=(n_img, m), copy=False)
    del data, indices
    return AT


def system_from_arrays(geom: Geometry, A_arrays: tuple, AT_arrays: tuple) -> System:
    """A :class:`System` from the ``(data, indices, indptr)`` of ``A`` and of ``A^T``."""
    m, n = geom.shape
    data, indices, indptr = A_arrays
    data_t, indices_t, indptr_t = AT_arrays
    return System(to_torch_csr(indptr, indices, data, (m, n)),
                  to_torch_csr(indptr_t, indices_t, data_t, (n, m)), geom.h, geom.w)


def build_system(geom: Geometry, progress: bool = False) -> System:
    """Build ``A^T`` and derive ``A`` from it by a transpose.

    Examples
    --------
    >>> from physinv.operators.tomography.geometry import Geometry
    >>> s = build_system(Geometry.from_args(8, [0.0, 90.0], circle=False))
    >>> tuple(s.A.shape), tuple(s.AT.shape)
    ((24, 64), (64, 24))
    >>> float(s.A.to_dense().sum(0).max())  # at 0 and 90 degrees each pixel's weights sum to 1
    2.0
    """
    AT = build_transpose(geom, progress)
    A = AT.transpose().tocsr()  # csc -> csr: a counting sort in C, O(nnz)
    A.sort_indices()
    return system_from_arrays(geom, (A.data, A.indices, A.indptr), (AT.data, AT.indices, AT.indptr))
