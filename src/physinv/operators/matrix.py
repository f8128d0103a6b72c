"""Dense and sparse matrices as operators on flattened trailing dimensions, and the numerical SVD."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from .._validate import as_shape
from .base import DENSE_LIMIT, LinearOperator
from .factorization import Factorization

__all__ = ["Matrix", "truncated_svd"]


def _to_torch_matrix(M: Any) -> torch.Tensor:
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        sp = None
    if sp is not None and sp.issparse(M):
        coo = M.tocoo()
        idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        vals = torch.from_numpy(np.asarray(coo.data))
        return torch.sparse_coo_tensor(idx, vals, coo.shape, check_invariants=True).coalesce().to_sparse_csr()
    if isinstance(M, torch.Tensor):
        if M.layout == torch.sparse_coo:
            return M.coalesce().to_sparse_csr()
        if M.layout not in (torch.strided, torch.sparse_csr):  # CSC, BSR, BSC
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                return M.to_sparse_coo().coalesce().to_sparse_csr()
        return M
    return torch.as_tensor(np.asarray(M))


class Matrix(LinearOperator):
    """A dense or sparse matrix ``M`` acting on flattened trailing dimensions.

    Parameters
    ----------
    M : torch.Tensor, numpy.ndarray or scipy.sparse matrix
        A 2-D ``(m, n)`` matrix: dense (torch or numpy) or sparse (torch
        sparse COO/CSR or any ``scipy.sparse`` format). Integer matrices are
        converted to float64; everything else keeps its dtype.
    in_shape : tuple of int, optional
        Trailing input shape with ``prod(in_shape) == n`` (default ``(n,)``).
    out_shape : tuple of int, optional
        Trailing output shape with ``prod(out_shape) == m`` (default ``(m,)``).

    Examples
    --------
    >>> import numpy as np, torch
    >>> A = Matrix(np.ones((1, 4)), in_shape=(2, 2))
    >>> A(torch.ones(3, 2, 2, dtype=torch.float64))
    tensor([[4.],
            [4.],
            [4.]], dtype=torch.float64)
    """

    def __init__(self, M: Any, in_shape: Any = None, out_shape: Any = None) -> None:
        M = _to_torch_matrix(M)
        if M.dim() != 2:
            raise ValueError(f"M must be a 2-D matrix, got shape {tuple(M.shape)}")
        if not (M.is_floating_point() or M.is_complex()):
            M = M.to(torch.float64)
        m, n = M.shape
        in_shape = (n,) if in_shape is None else as_shape(in_shape, "in_shape")
        out_shape = (m,) if out_shape is None else as_shape(out_shape, "out_shape")
        if math.prod(in_shape) != n:
            raise ValueError(f"in_shape {in_shape} has {math.prod(in_shape)} entries but M has "
                             f"{n} columns")
        if math.prod(out_shape) != m:
            raise ValueError(f"out_shape {out_shape} has {math.prod(out_shape)} entries but M has "
                             f"{m} rows")
        super().__init__(in_shape, out_shape)
        self.sparse = M.layout != torch.strided
        if not self.sparse:
            M = M.resolve_conj()
        vals = M.values() if self.sparse else M
        if not bool(torch.isfinite(vals.abs() if vals.is_complex() else vals).all()):
            raise ValueError("M must contain only finite values")
        self.is_real = not M.is_complex()
        self.register_buffer("M", M)
        # The adjoint of a sparse matrix is kept as its own CSR matrix: a CSR
        # transpose on the fly costs as much as the product itself.
        if self.sparse:
            self.register_buffer("MH", M.to_sparse_coo().t().conj().coalesce().to_sparse_csr())

    def _mm(self, x: torch.Tensor, adjoint: bool) -> torch.Tensor:
        n_in, shape_out = (self.shape[0], self.in_shape) if adjoint else (self.shape[1], self.out_shape)
        lead = x.shape[: x.dim() - len(self.out_shape if adjoint else self.in_shape)]
        X = x.reshape(-1, n_in)
        if self.sparse:  # the adjoint is its own CSR matrix
            M = self.buffer_like("MH" if adjoint else "M", x)
            if M.is_complex() and not X.is_complex():
                X = X.to(M.dtype)
            Y = (M @ X.T).T
        else:
            M = self.buffer_like("M", x)
            if M.is_complex() and not X.is_complex():
                X = X.to(M.dtype)
            Y = X @ (M.conj() if adjoint else M.T)
        return Y.reshape(lead + shape_out)

    def _forward(self, x):
        return self._mm(x, adjoint=False)

    def _adjoint(self, y):
        return self._mm(y, adjoint=True)

    def _has_exact_svd(self):
        return not self.sparse

    def _svd(self):
        if self.sparse:
            return super()._svd()
        M = self.M.to(torch.complex128 if self.M.is_complex() else torch.float64)
        u, s, vh = torch.linalg.svd(M, full_matrices=False)
        r = s.numel()
        U = Matrix(u, in_shape=(r,), out_shape=self.out_shape)
        V = Matrix(vh.conj().T, in_shape=(r,), out_shape=self.in_shape)
        return Factorization(U, s, V)

    def to_dense(self, dtype: torch.dtype | None = None, max_entries: int = DENSE_LIMIT) -> torch.Tensor:
        """The matrix itself, as a new dense tensor (float64/complex128 unless ``dtype`` is given).

        Examples
        --------
        >>> import torch
        >>> Matrix(torch.eye(2, dtype=torch.float32)).to_dense()
        tensor([[1., 0.],
                [0., 1.]], dtype=torch.float64)
        """
        dtype = self._dense_dtype(dtype, max_entries)
        if self.M.is_complex() and not dtype.is_complex:
            raise ValueError(f"to_dense: dtype {dtype} is real but the matrix is complex ({self.M.dtype})")
        M = self.M.to_dense() if self.sparse else self.M
        return M.to(dtype, copy=True)

    def _config(self):
        M = self.M.to_dense() if self.sparse else self.M
        M = M.detach().cpu()
        cfg: dict[str, Any] = {"in_shape": list(self.in_shape), "out_shape": list(self.out_shape)}
        if M.is_complex():
            cfg.update(M=torch.view_as_real(M).tolist(), complex=True)
        else:
            cfg.update(M=M.tolist())
        cfg["sparse"] = self.sparse
        return cfg

    @classmethod
    def _from_config(cls, kw):
        M = torch.tensor(kw["M"], dtype=torch.float64)
        if kw.get("complex"):
            M = torch.view_as_complex(M)
        if kw.get("sparse"):
            M = M.to_sparse_csr()
        return cls(M, kw["in_shape"], kw["out_shape"])

    def extra_repr(self):
        kind = "sparse" if self.sparse else "dense"
        return f"{kind} {self.shape[0]}x{self.shape[1]}, in_shape={self.in_shape}, out_shape={self.out_shape}"


def truncated_svd(A: LinearOperator, k: int, tol: float = 0.0, seed: int = 0) -> Factorization:
    """Top-``k`` singular triplets of any operator by Lanczos (``scipy.sparse.linalg.svds``).

    Returns a :class:`~physinv.operators.Factorization` whose ``U`` and ``V``
    are dense :class:`Matrix` operators with ``k`` orthonormal columns,
    singular values in decreasing order. ``A.svd(k=k)`` calls this.

    Examples
    --------
    >>> import torch
    >>> A = Matrix(torch.diag(torch.arange(1.0, 6.0)))
    >>> truncated_svd(A, 2).s
    tensor([5., 4.], dtype=torch.float64)
    """
    from scipy.sparse.linalg import svds

    m, n = A.shape
    if not isinstance(k, (int, np.integer)) or k < 1 or k >= min(m, n):
        raise ValueError(f"k must be an integer in [1, {min(m, n) - 1}] for a {m}x{n} operator, "
                         f"got {k!r}; use svd() for the full factorization")
    need = (m + n) * k * 8
    if need > 2**34:
        raise ValueError(f"svd(k={k}) would need about {need / 2**30:.1f} GiB for the singular "
                         "vectors; ask for fewer")
    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(min(m, n))
    u, s, vh = svds(A.to_scipy(np.float64 if A.is_real else np.complex128), k=k, tol=tol, v0=v0)
    order = np.argsort(s)[::-1]
    u, s, vh = u[:, order], s[order], vh[order]
    device, _ = A._probe_tensor()
    U = Matrix(torch.from_numpy(np.ascontiguousarray(u)).to(device), in_shape=(k,), out_shape=A.out_shape)
    V = Matrix(torch.from_numpy(np.ascontiguousarray(vh.conj().T)).to(device), in_shape=(k,),
               out_shape=A.in_shape)
    return Factorization(U, torch.from_numpy(s.copy()).to(device), V)
