"""Products of a 3-vector or 3x3 matrix with many 3-vectors, without BLAS.

numpy's ``@`` hands these to OpenBLAS, which threads them from a few thousand columns on;
on a shared CPU that made them up to 30x slower than einsum's single-threaded loop.
"""
from __future__ import annotations

import numpy as np


def dot(v: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(k,) . (k, n) -> (n,)."""
    return np.einsum('k,kn->n', v, columns)


def transform(m: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(j, k) x (k, n) -> (j, n)."""
    return np.einsum('jk,kn->jn', m, columns)
