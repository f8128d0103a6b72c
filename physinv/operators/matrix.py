"""Dense and sparse matrices as operators on flattened trailing dimensions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .base import LinearOperator, as_shape
from .factorization import Factorization

__all__ = ["Matrix"]


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
        if M.layout in (torch.sparse_csr,):
            return M
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
        if not bool(torch.isfinite(vals).all()):
            raise ValueError("M must contain only finite values")
        self.is_real = not M.is_complex()
        self.register_buffer("M", M)
        # The adjoint of a sparse matrix is kept as its own CSR matrix: a CSR
        # transpose on the fly costs as much as the product itself.
        if self.sparse:
            self.register_buffer("MH", M.to_sparse_coo().t().conj().coalesce().to_sparse_csr())

    def _mm(self, name: str, x: torch.Tensor, n_in: int, shape_out) -> torch.Tensor:
        lead = x.shape[: x.dim() - (len(self.in_shape) if name == "M" else len(self.out_shape))]
        X = x.reshape(-1, n_in)
        M = getattr(self, name)
        if M.device != x.device:
            raise ValueError(f"Matrix: input is on {x.device} but the operator is on {M.device}")
        if self.sparse:
            Mc = M if M.dtype == X.dtype else M.to(X.dtype)
            Y = (Mc @ X.T).T
        else:
            Mc = self._like("M", x)
            Y = X @ (Mc.T if name == "M" else Mc.conj())
        return Y.reshape(lead + shape_out)

    def _forward(self, x):
        return self._mm("M", x, self.shape[1], self.out_shape)

    def _adjoint(self, y):
        return self._mm("MH" if self.sparse else "_dense_adj", y, self.shape[0], self.in_shape)

    @property
    def _dense_adj(self):  # the dense adjoint product is x @ conj(M) (computed in _mm)
        return self.M

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

    def to_dense(self, dtype=None, max_entries=None):
        M = self.M.to_dense() if self.sparse else self.M
        return M if dtype is None else M.to(dtype)

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
