"""The parallel-beam Radon transform as a sparse system matrix with an exact adjoint.

The weights (:mod:`.kernel`, the exact line integrals of the bilinear image)
form a sparse matrix (about 2.6 entries per pixel and angle) that is stored
twice, as ``A`` and as its explicit transpose, both in CSR (:mod:`.build`);
the forward projection is ``A @ X`` and the adjoint ``A^T @ Y`` with the
batch stacked as columns, so the adjoint is exact by construction. The
pixel axis of both is stored in 16x16-tile order for cache reuse; the
exports (:meth:`Radon.to_scipy_sparse`) use the natural row-major order.
Operators of equal geometry share one pair, and ``cache_dir`` keeps it on
disk (:mod:`.cache`).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import sys
import warnings
from typing import Any

import numpy as np
import torch

from ..._validate import check_size, real_dtype
from ..base import DENSE_LIMIT, LinearOperator, _renamed
from ..factorization import Factorization
from ..matrix import Matrix
from .cache import InvalidCacheFile, cache_path, get_system, load_npz, save_arrays
from .geometry import (
    Geometry,
    _angle_count,
    check_angles,
    check_in_shape,
    inside_circle,
    pixel_mask,
    radon_matrix_nbytes,
)

__all__ = ["Radon", "MAX_BYTES", "SVD_MAX_BYTES"]

#: Default limit (bytes) on the estimated size of a :class:`Radon` system matrix pair.
MAX_BYTES = 4 * 2**30
#: Default memory budget (bytes) for :meth:`Radon.svd` (dense or truncated).
SVD_MAX_BYTES = 4 * 2**30
#: ``has_svd`` is True up to this dense-SVD cost (``m n min(m, n)``) or once svd() has run.
_QUICK_SVD_FLOPS = 1e10
#: Version of the cached factorization files' layout; part of their name.
_SVD_FORMAT = 2


#: Warnings point at the first frame outside these folders (the caller's code).
_INTERNAL = (os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep,
             os.path.dirname(os.path.abspath(torch.__file__)) + os.sep)


#: Frames that only pass a call on (torch's module machinery, physinv's composite operators).
_TRANSPARENT = (_INTERNAL[1], os.path.join(_INTERNAL[0], "operators") + os.sep)


def _called_by_physinv() -> bool:
    """True when the call comes from physinv's own methods (a solver, a network), not from the user."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_TRANSPARENT):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(_INTERNAL[0])


def _caller_stacklevel() -> int:
    """The ``stacklevel`` (for the function calling this) of the first frame outside physinv and torch."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    return level


def _fmt_bytes(n: float) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.3g} GiB"
    return f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{int(n)} bytes"


def _check_bytes(value: Any, name: str) -> float:
    if (not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(value)
            or value <= 0):
        raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
    return float(value)


class _SparseMM(torch.autograd.Function):
    """Batched sparse product with the pixel axis in storage order; differentiable in X.

    ``to_pixels=False`` (projection): ``X`` is ``(B, n_pixels)`` in natural
    order, gathered into storage order (``order``) while transposing, then
    ``M @ X^T``. ``to_pixels=True`` (back-projection): ``M @ X^T`` gives
    pixels in storage order, gathered back into natural order (``pos``). The
    gradient is the same product with ``MT`` and the other direction.
    """

    @staticmethod
    def forward(ctx, X, M, MT, order, pos, to_pixels):
        ctx.M, ctx.MT, ctx.order, ctx.pos, ctx.to_pixels = M, MT, order, pos, to_pixels
        if to_pixels:
            return torch.mm(M, X.t().contiguous()).index_select(0, pos).t().contiguous()
        return torch.mm(M, X.t().index_select(0, order)).t().contiguous()

    @staticmethod
    def backward(ctx, G):
        grad = _SparseMM.apply(G.contiguous(), ctx.MT, ctx.M, ctx.order, ctx.pos, not ctx.to_pixels)
        return grad, None, None, None, None, None


class Radon(LinearOperator):
    """Parallel-beam Radon transform with an exact adjoint (sparse system matrix).

    Maps images ``(..., H, W)`` to sinograms ``(..., n_angles, n_detectors)``
    (angles first; scikit-image's ``radon`` returns the transpose,
    ``(n_detectors, n_angles)``). Geometry: the conventions of
    :func:`skimage.transform.radon` (:mod:`physinv.operators.tomography.geometry`);
    discretisation: the exact line integral of the bilinear interpolant
    (:mod:`physinv.operators.tomography.kernel`); see ``docs/tomography.md``.
    Filtered back-projection is :func:`physinv.solvers.fbp` (``fbp(y, A)``).

    Parameters
    ----------
    in_shape : int or (int, int)
        ``N`` for ``N x N`` images, or ``(H, W)`` (only with ``circle=False``).
    angles : int or sequence of float
        Projection angles in **degrees** (any set: sparse-view and
        limited-angle geometries work), or a number ``n`` of angles spread
        evenly over ``[0, 180)``.
    n_detectors : int, optional
        Number of detector bins (unit spacing). Default: ``N`` with
        ``circle=True`` and ``ceil(sqrt(2) * max(H, W))`` otherwise, as
        scikit-image.
    circle : bool
        If True the object is assumed to be zero outside the inscribed disc
        (radius ``N // 2`` around pixel ``(N // 2, N // 2)``): pixels outside
        it are ignored by the projection, and the adjoint is zero there. A
        forward projection of an image with non-negligible content outside
        the disc warns (see Notes).
    progress : bool
        Show a progress bar while the system matrix is built.
    cache_dir : str or path, optional
        Directory (``~`` expanded) of an on-disk cache of the system matrix
        (``.npz`` of ``A`` and ``A^T``, :attr:`nbytes` on disk, written
        atomically, keyed by a hash of the geometry): later processes read
        it instead of rebuilding. Every file is validated on load; an
        unreadable or invalid one is rebuilt and rewritten with a
        ``UserWarning`` naming it. Not part of :meth:`to_config`.
    max_bytes : float
        Refuse (``ValueError``, before anything is allocated) a geometry
        whose matrix pair :func:`radon_matrix_nbytes` estimates above this;
        default :data:`MAX_BYTES` (4 GiB, enough for 512x512 with 360
        angles). Not part of :meth:`to_config`.

    Notes
    -----
    Memory: the two CSR matrices take ``radon_matrix_nbytes(...)`` bytes
    (about 8 bytes per entry in float32, 2.6 entries per pixel and angle):
    about 0.35 GiB for 256x256 with 180 angles and 2.8 GiB for 512x512
    with 360 angles. float64 inputs use a float64 copy of the values
    (made on first use, cached; index arrays shared): 16 more bytes per
    entry. Operators of equal geometry share one matrix pair in-process.

    Content outside the circle: with ``circle=True`` the forward projection
    warns (``UserWarning``) when, for some image of the batch, the norm of
    the pixels outside the disc exceeds ``sqrt(eps)`` times the image's
    norm (``eps`` the machine epsilon of the input's precision: 3.5e-4 in
    float32, 1.5e-8 in float64), i.e. when ignoring it changes more than
    rounding. Multiply the images by :meth:`circle_mask` (or use
    ``circle=False``) to project them without the warning. The adjoint
    never warns.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Radon
    >>> A = Radon(32, angles=[0.0, 45.0, 90.0])
    >>> x = torch.ones(2, 32, 32) * A.circle_mask()
    >>> y = A(x)
    >>> y.shape
    torch.Size([2, 3, 32])
    >>> bool(torch.allclose(y[0, 0], A.circle_mask().sum(0).float()))  # 0 degrees: column sums
    True
    """

    def __init__(self, in_shape: Any, angles: Any, n_detectors: int | None = None,
                 circle: bool = True, progress: bool = False,
                 cache_dir: str | os.PathLike | None = None, *, max_bytes: float = MAX_BYTES) -> None:
        limit = _check_bytes(max_bytes, "max_bytes")
        if cache_dir is not None:
            cache_path(cache_dir, "")  # type check before any work
        h, w = check_in_shape(in_shape)
        check_size(h * w, f"a {h}x{w} image", "in_shape")
        count = _angle_count(angles)
        if count is not None:
            check_size(count, f"{count} projection angles", "angles")
        need = radon_matrix_nbytes(in_shape, angles, n_detectors, circle)  # checks the arguments
        if need > limit:
            count = angles if isinstance(angles, numbers.Integral) else check_angles(angles).size
            enough = f"{math.ceil(need / 2**30)} * 2**30" if need >= 2**30 else str(need)
            raise ValueError(
                f"Radon(in_shape={in_shape!r}, angles=<{count} angles>, n_detectors={n_detectors!r}): "
                f"the system matrix would take about {_fmt_bytes(need)}, above max_bytes="
                f"{_fmt_bytes(limit)}; use fewer angles, fewer detectors or a smaller image, or "
                f"pass max_bytes={enough} if the memory is there")
        # two CSR matrices of about 16 bytes per stored entry (float32 value + int32 index, twice)
        check_size(need // 16, "the stored entries of the system matrix", "angles")
        geom = Geometry.from_args(in_shape, angles, n_detectors, circle)
        check_size(geom.n_angles * geom.n_det, f"a {geom.n_angles}x{geom.n_det} sinogram", "n_detectors")
        super().__init__((geom.h, geom.w), (geom.n_angles, geom.n_det))
        self._geometry = geom
        self.angles = geom.angles
        self.n_detectors = geom.n_det
        self.circle = geom.circle
        system = get_system(geom, progress, cache_dir)
        self._system = system  # keeps the shared pair alive while this operator lives
        self.register_buffer("_A", system.A, persistent=False)
        self.register_buffer("_AT", system.AT, persistent=False)
        self.register_buffer("_order", system.order, persistent=False)
        self.register_buffer("_pos", system.pos, persistent=False)
        oi, oj = np.nonzero(~inside_circle(geom.h, geom.w, geom.circle))
        self.register_buffer("_outside_i", torch.from_numpy(oi), persistent=False)
        self.register_buffer("_outside_j", torch.from_numpy(oj), persistent=False)

    # ------------------------------------------------------------ properties
    @property
    def n_angles(self) -> int:
        """Number of projection angles."""
        return int(self.angles.size)

    @property
    def n_pixels(self) -> int:
        """Number of pixels the operator sees (those inside the disc for ``circle=True``)."""
        return self._geometry.n_pixels

    @property
    def nnz(self) -> int:
        """Number of stored entries of the system matrix ``A``."""
        return self._system.nnz

    @property
    def nbytes(self) -> int:
        """Bytes held by the float32 ``A`` and ``A^T`` pair."""
        return self._system.nbytes

    def circle_mask(self) -> torch.Tensor:
        """Boolean ``(H, W)`` mask of the pixels the operator sees (on the operator's device).

        Examples
        --------
        >>> Radon(4, 1).circle_mask().sum().item()
        11
        """
        h, w = self.in_shape
        return torch.from_numpy(inside_circle(h, w, self.circle)).to(self._A.device)

    # ---------------------------------------------------------- application
    def _apply_sparse(self, name: str, name_t: str, x: torch.Tensor, n_in: int,
                      out_shape: tuple[int, ...], to_pixels: bool) -> torch.Tensor:
        lead = x.shape[: x.dim() - 2]
        X = x.reshape(-1, n_in)
        M = self.buffer_like(name, x)  # values in x's precision; index arrays shared
        MT = self.buffer_like(name_t, x)
        if X.shape[0] == 0:
            return x.new_zeros(lead + out_shape)
        Y = _SparseMM.apply(X, M, MT, self._order, self._pos, to_pixels)
        return Y.reshape(lead + out_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project: ``y = A x``; warns if ``circle=True`` and a user's ``x`` has content outside the disc."""
        y = super().forward(x)
        # The warning is for data users project; physinv's solvers and networks project their own
        # iterates, whose content outside the disc is undetermined and rightly ignored.
        if self.circle and not _called_by_physinv():
            self._warn_outside(x)
        return y

    def gram(self, x: torch.Tensor) -> torch.Tensor:
        """``A^H A x`` without the outside-the-circle warning (solvers and ``norm()`` use it)."""
        return self.adjoint(super().forward(x))

    def _warn_outside(self, x: torch.Tensor) -> None:
        if self._outside_i.numel() == 0:
            return
        with torch.no_grad():
            xd = x.detach()
            outside = torch.linalg.vector_norm(xd[..., self._outside_i, self._outside_j], dim=-1)
            total = torch.linalg.vector_norm(xd, dim=(-2, -1))
            rtol = math.sqrt(torch.finfo(real_dtype(x.dtype)).eps)
            ignored = bool((outside > rtol * total).any())
        if ignored:
            warnings.warn(
                "Radon(circle=True): the input has content outside the inscribed circle, which the "
                "projection ignores; multiply it by A.circle_mask() to project it without this "
                "warning, or use circle=False to project the whole image", UserWarning,
                stacklevel=_caller_stacklevel())

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_sparse("_A", "_AT", x, self.shape[1], self.out_shape, False)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._apply_sparse("_AT", "_A", y, self.shape[0], self.in_shape, True)

    # -------------------------------------------------------------- exports
    def to_scipy_sparse(self, dtype: Any = np.float64):
        """The system matrix ``A`` as a :class:`scipy.sparse.csr_matrix` (rows: angle-major sinogram).

        Examples
        --------
        >>> Radon(8, 4).to_scipy_sparse().shape
        (32, 64)
        """
        import scipy.sparse as sp

        A = self._system.A
        data = A.values().numpy().astype(dtype, copy=True)
        stored = sp.csr_matrix((data, A.col_indices().numpy(), A.crow_indices().numpy()),
                               shape=tuple(A.shape), copy=False)
        natural = stored[:, self._system.pos.numpy()]  # column p <- stored column pos[p]
        natural.sort_indices()
        return natural

    def to_dense(self, dtype: torch.dtype | None = None, max_entries: int = DENSE_LIMIT) -> torch.Tensor:
        """The system matrix as a dense tensor (from the sparse one; no projection, so no warning).

        Examples
        --------
        >>> Radon(3, [0.0]).to_dense()
        tensor([[0., 0., 0., 1., 0., 0., 0., 0., 0.],
                [0., 1., 0., 0., 1., 0., 0., 1., 0.],
                [0., 0., 0., 0., 0., 1., 0., 0., 0.]], dtype=torch.float64)
        """
        dtype = self._dense_dtype(dtype, max_entries)
        dense = torch.from_numpy(self.to_scipy_sparse(np.float64).toarray())
        return dense.to(device=self._A.device, dtype=dtype)

    def to_scipy(self, dtype: Any = np.float64):
        """A :class:`scipy.sparse.linalg.LinearOperator` backed by the CSR matrix (fast for lsqr).

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.sparse.linalg import lsqr
        >>> A = Radon(8, 12)
        >>> x = np.zeros(64); x[27] = 1.0
        >>> xr = lsqr(A.to_scipy(), A.to_scipy() @ x, atol=1e-12, btol=1e-12)[0]
        >>> bool(np.abs(xr - x).max() < 1e-6)
        True
        """
        from scipy.sparse.linalg import aslinearoperator

        return aslinearoperator(self.to_scipy_sparse(dtype))

    # -------------------------------------------------------- factorization
    def _dense_svd_bytes(self) -> int:
        m, r = self.shape[0], self.n_pixels
        k = min(m, r)
        return 8 * (2 * m * r + m * k + 2 * r * k + 4 * k * k)

    def _has_exact_svd(self) -> bool:
        # True where svd() is quick (the dense SVD costs about m n^2 flops; 1e10 is a few
        # seconds, e.g. 32x32 with 180 angles) or already computed, so that solvers which
        # pick the spectral route on has_svd do not start a minutes-long factorization.
        # svd() itself works up to its memory budget regardless.
        if self.cached_factorization() is not None:
            return True
        m, n = self.shape[0], self.n_pixels
        return m * n * min(m, n) <= _QUICK_SVD_FLOPS and self._dense_svd_bytes() <= SVD_MAX_BYTES

    def _exact_norm(self) -> float | None:
        f = self.cached_factorization()
        return None if f is None else float(f.s.max())

    def svd(self, k: int | None = None, *, max_bytes: float = SVD_MAX_BYTES,
            cache_dir: str | os.PathLike | None = None, tol: float = 0.0,
            seed: int = 0) -> Factorization:
        """``A = U diag(s) V^T``: exact (dense) without ``k``, top-``k`` (Lanczos) with ``k``.

        Parameters
        ----------
        k : int, optional
            Without ``k``: the exact thin SVD of the dense matrix restricted to
            the pixels the operator sees (float64, ``torch.linalg.svd``),
            computed once and cached on the operator; practical up to about
            64x64 images. With ``k``: the ``k`` largest singular triplets by
            :func:`physinv.operators.truncated_svd` (ARPACK Lanczos on the
            sparse matrix).
        max_bytes : float
            Memory budget; a request estimated above it raises
            ``ValueError`` before anything is allocated.
        cache_dir : str or path, optional
            Directory (``~`` expanded) of an on-disk cache (``.npz``, written
            atomically), keyed by a hash of the geometry and ``k``. A file
            that cannot be read, does not match the geometry or is not an
            SVD of ``A`` (checked on load with random probes) is recomputed
            and rewritten with a ``UserWarning`` naming it.
        tol, seed : float, int
            Lanczos tolerance and the seed of its start vector (``k`` only).

        Returns
        -------
        Factorization
            ``U``, ``V`` are :class:`~physinv.operators.Matrix` operators
            (float64), singular values in decreasing order. With
            ``circle=True`` the columns of ``V`` vanish outside the disc
            (exactly for the dense SVD, up to rounding for ``k``).

        Examples
        --------
        >>> import torch
        >>> A = Radon(8, 6)
        >>> F = A.svd()
        >>> x = torch.rand(8, 8, dtype=torch.float64) * A.circle_mask()
        >>> bool(torch.allclose(F.forward(x), A(x)))
        True
        >>> bool(torch.allclose(A.svd(k=3).s, F.s[:3]))
        True
        """
        _check_bytes(max_bytes, "max_bytes")
        if cache_dir is not None:
            cache_path(cache_dir, "")  # type check
        if k is None:
            # LinearOperator.svd() caches the result of the hook _svd (one cache)
            return super().svd(max_bytes=max_bytes, cache_dir=cache_dir)
        return super().svd(self._check_k(k), max_bytes=max_bytes, cache_dir=cache_dir, tol=tol,
                           seed=seed)

    def _check_k(self, k: Any) -> int:
        top = min(self.shape[0], self.n_pixels) - 1
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or not 1 <= k <= top:
            raise ValueError(f"k must be an integer in [1, {top}] for this geometry, got {k!r}; "
                             "use svd() for the full factorization")
        return int(k)

    def _refuse(self, need: int, max_bytes: float, what: str, hint: str) -> None:
        if need > max_bytes:
            raise ValueError(f"{what} would need about {_fmt_bytes(need)}, above max_bytes="
                             f"{_fmt_bytes(max_bytes)}; {hint} or raise max_bytes")

    def _svd(self, *, max_bytes: float = SVD_MAX_BYTES,
             cache_dir: str | os.PathLike | None = None) -> Factorization:
        m, n_pix = self.shape[0], self.n_pixels
        self._refuse(self._dense_svd_bytes(), max_bytes, f"the dense SVD of this {m}x{n_pix} system",
                     "use svd(k=...)")
        r = min(m, n_pix)
        path = self._svd_path(cache_dir, ("dense",))
        hit = self._load_factors(path, r)
        if hit is not None:
            return hit
        pix = pixel_mask(*self.in_shape, self.circle)
        A = self.to_scipy_sparse()[:, pix].toarray()
        u, s, vh = torch.linalg.svd(torch.from_numpy(A), full_matrices=False)
        del A
        v = np.zeros((self.shape[1], s.numel()))
        v[pix] = vh.T.numpy()
        u, s = u.numpy(), s.numpy()
        if path is not None:
            save_arrays(path, key=np.array(os.path.basename(path)), u=u, s=s, v=v)
        return self._make_factorization(u, s, v)

    def _truncated_svd(self, k: int, *, max_bytes: float = SVD_MAX_BYTES,
                       cache_dir: str | os.PathLike | None = None, tol: float = 0.0,
                       seed: int = 0) -> Factorization:
        k = self._check_k(k)
        m, n = self.shape
        ncv = min(max(2 * k + 1, 20), min(m, n))
        need = 8 * (m + n) * (ncv + 2 * k) + 12 * self.nnz
        self._refuse(need, max_bytes, f"svd(k={k})", "ask for fewer singular values (k)")
        path = self._svd_path(cache_dir, ("top", k, float(tol), int(seed)))
        hit = self._load_factors(path, k)
        if hit is not None:
            return hit
        f = super()._truncated_svd(k, tol=tol, seed=seed)
        if path is not None:
            save_arrays(path, key=np.array(os.path.basename(path)), u=f.U.to_dense().cpu().numpy(),
                        s=f.s.cpu().numpy(), v=f.V.to_dense().cpu().numpy())
        return f

    def _svd_path(self, cache_dir: Any, key: tuple) -> str | None:
        if cache_dir is None:
            return None
        desc = json.dumps({"format": _SVD_FORMAT, "system": self._geometry.key, "key": list(key)},
                          sort_keys=True)
        return cache_path(cache_dir, f"radon_svd_{hashlib.sha256(desc.encode()).hexdigest()[:24]}.npz")

    def _load_factors(self, path: str | None, r: int) -> Factorization | None:
        if path is None:
            return None
        return load_npz(path, lambda z: self._read_factors(z, os.path.basename(path), r))

    def _read_factors(self, z: Any, expected: str, r: int) -> Factorization:
        """The factorization in ``z``; InvalidCacheFile unless it holds ``r`` singular triplets of A."""
        m, n = self.shape
        key = str(z["key"])
        if key != expected:
            raise InvalidCacheFile(f"it was written for another factorization ({key!r})")
        arrays = {}
        for name, shape in (("u", (m, r)), ("s", (r,)), ("v", (n, r))):
            a = arrays[name] = z[name]
            if a.dtype != np.float64 or a.shape != shape:
                raise InvalidCacheFile(f"{name} must be float64 of shape {shape}, got {a.dtype} of "
                                       f"shape {a.shape}")
            if not np.isfinite(a).all():
                raise InvalidCacheFile(f"{name} has non-finite values")
        u, s, v = arrays["u"], arrays["s"], arrays["v"]
        if (s < 0).any() or (np.diff(s) > 0).any():
            raise InvalidCacheFile("the singular values must be non-negative and non-increasing")
        # random probes: U and V orthonormal, A V = U diag(s) (O(nnz + (m + n) r) work)
        w = np.random.default_rng(0).standard_normal(r)
        nw = float(np.linalg.norm(w))
        for name, q in (("U", u), ("V", v)):
            if np.linalg.norm(q.T @ (q @ w) - w) > 1e-6 * nw:
                raise InvalidCacheFile(f"the columns of {name} are not orthonormal")
        x = torch.from_numpy((v @ w).reshape(self.in_shape)).to(self._A.device, torch.float32)
        Av = self._forward(x).reshape(-1).cpu().double().numpy()  # float32: rounding ~1e-7
        err = float(np.linalg.norm(Av - u @ (s * w))) / (float(s[0]) * nw + 1e-300)
        if err > 1e-5:
            raise InvalidCacheFile(f"A V differs from U diag(s) (relative error {err:.1e})")
        return self._make_factorization(u, s, v)

    def _make_factorization(self, u, s, v) -> Factorization:
        device = self._A.device
        r = int(np.asarray(s).size)
        U = Matrix(torch.from_numpy(np.ascontiguousarray(u)).to(device), in_shape=(r,),
                   out_shape=self.out_shape)
        V = Matrix(torch.from_numpy(np.ascontiguousarray(v)).to(device), in_shape=(r,),
                   out_shape=self.in_shape)
        return Factorization(U, torch.from_numpy(np.asarray(s, dtype=np.float64)).to(device), V)

    # -------------------------------------------------------- serialisation
    def _config(self) -> dict[str, Any]:
        h, w = self.in_shape
        return {"in_shape": [h, w], "angles": self.angles.tolist(),
                "n_detectors": self.n_detectors, "circle": self.circle}

    @classmethod
    def _from_config(cls, kw: dict[str, Any]) -> Radon:
        return cls(**_renamed(kw, "image_size", "in_shape"))  # also reads configs before the rename

    def extra_repr(self) -> str:
        return (f"in_shape={self.in_shape}, n_angles={self.n_angles}, "
                f"n_detectors={self.n_detectors}, circle={self.circle}")
