"""Sparse Hessians: recover them from a few products, factorise them once.

Nothing here knows about argmins; it is the numerical layer under the ``hess_sparsity``,
``hess`` and ``solver="sparse"`` options (scipy's names, as in ``scipy.optimize``):

* :func:`as_pattern` turns a user's sparsity pattern into a symmetric boolean CSR matrix
  (the diagonal included);
* :func:`column_groups` colours the columns so that no two columns of one group have a
  nonzero in the same row (a distance-2 colouring of the pattern's graph); then
  :class:`HessianCompression` recovers the whole sparse Hessian from one Hessian-vector
  product per group (:func:`seed_matrix`, :func:`recover`): three products for a
  tridiagonal Hessian of any size;
* :func:`factorize` factorises a sparse matrix once, choosing the method by structure:
  LAPACK's tridiagonal (``pttrf``) or banded Cholesky/LU after a reverse Cuthill-McKee
  ordering when the band is narrow, CHOLMOD through scikit-sparse when it is installed
  (optional), ``scipy.sparse.linalg.splu`` otherwise. The factor serves any number of
  right-hand sides, transposed or not;
* :func:`jacobi_preconditioner` and :func:`ilu_preconditioner` for the Krylov solvers.
"""

from __future__ import annotations

import numpy as onp
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack
from scipy.sparse.csgraph import reverse_cuthill_mckee

from .exceptions import ArgminError, InputError

__all__ = [
    "SparsityError",
    "FactorizationError",
    "as_pattern",
    "bandwidth",
    "column_groups",
    "seed_matrix",
    "recover",
    "HessianCompression",
    "Factor",
    "factorize",
    "diagonal",
    "jacobi_preconditioner",
    "ilu_preconditioner",
]

try:  # optional: CHOLMOD does not install from PyPI everywhere
    from sksparse.cholmod import CholmodNotPositiveDefiniteError
    from sksparse.cholmod import cholesky as _cholmod
except ImportError:  # pragma: no cover - depends on the machine
    _cholmod = None

#: the banded factorisation is used when the band holds at most this many entries
BAND_LIMIT = 5 * 10**7


class SparsityError(InputError):
    """A sparsity pattern is malformed (shape, type) or wrong: the Hessian recovered from it
    does not reproduce autograd's Hessian-vector product, so it misses nonzeros."""


class FactorizationError(ArgminError):
    """A sparse factorisation failed: the matrix is singular, or (Cholesky) not definite.

    Attribute ``method``: the factorisation that failed."""

    def __init__(self, message, method=None):
        super().__init__(message)
        self.method = method


def as_pattern(pattern, n=None):
    """The sparsity pattern ``pattern`` (a scipy.sparse matrix, a dense array or nested
    lists; nonzero means "may be nonzero") as a boolean CSR matrix, symmetrised
    (``P | P^T``) and with its diagonal, of shape ``(n, n)``."""
    try:
        P = pattern if sp.issparse(pattern) else sp.csr_matrix(onp.asarray(pattern))
    except (TypeError, ValueError) as err:
        raise SparsityError(
            f"hess_sparsity must be a scipy.sparse matrix or an n x n array ({err})."
        ) from None
    if P.ndim != 2 or P.shape[0] != P.shape[1] or (n is not None and P.shape[0] != n):
        want = f"({n}, {n})" if n is not None else "square"
        raise SparsityError(
            f"hess_sparsity has shape {P.shape}; the Hessian over the flattened y is {want}."
        )
    P = sp.csr_matrix(P, dtype=bool)
    P.eliminate_zeros()
    m = P.shape[0]
    P = (P + P.T + sp.eye(m, dtype=bool, format="csr")).tocsr()
    P.sort_indices()
    return P


def _rows_cols(A):
    """Row and column indices of the stored entries of the CSR matrix ``A``, in order."""
    rows = onp.repeat(onp.arange(A.shape[0], dtype=onp.int64), onp.diff(A.indptr))
    return rows, A.indices.astype(onp.int64)


def bandwidth(P):
    """The largest ``|i - j|`` over the nonzeros of ``P`` (0 for a diagonal matrix)."""
    P = P if sp.isspmatrix_csr(P) else sp.csr_matrix(P)
    if not P.nnz:
        return 0
    if not P.has_sorted_indices:
        P = P.sorted_indices()
    nonempty = onp.flatnonzero(onp.diff(P.indptr))  # first and last entry of each row
    first = P.indices[P.indptr[nonempty]].astype(onp.int64)
    last = P.indices[P.indptr[nonempty + 1] - 1].astype(onp.int64)
    return int(max(onp.max(nonempty - first), onp.max(last - nonempty), 0))


def column_groups(pattern):
    """A distance-2 colouring of the symmetric pattern: ``groups[j]`` is the group of
    column ``j``; two columns of one group never have a nonzero in the same row, so one
    product with the sum of a group's unit vectors reads off all their entries.

    A pattern of bandwidth ``b`` gets the cyclic colouring ``j mod (2b + 1)`` (what the
    greedy colouring gives on a full band: 3 groups for a tridiagonal matrix); otherwise a
    vectorised greedy colouring in rounds (Jones-Plassmann: each round colours the
    uncoloured columns whose seeded random priority beats all their uncoloured neighbours,
    with the smallest group none of their coloured neighbours uses). The fewer groups of
    the two is returned."""
    P = as_pattern(pattern)
    n = P.shape[0]
    if n == 0:
        return onp.zeros(0, dtype=onp.int64)
    b = bandwidth(P)
    cyclic = onp.arange(n, dtype=onp.int64) % (2 * b + 1)
    if 2 * b + 1 <= 3 or b * n <= 0:
        return cyclic
    greedy = _greedy_groups(P)
    return greedy if greedy.max() < cyclic.max() else cyclic


def _greedy_groups(P):
    n = P.shape[0]
    C = (P.astype(onp.int8) @ P.astype(onp.int8)).tocoo()  # columns sharing a row
    keep = C.row != C.col
    rows, cols = C.row[keep].astype(onp.int64), C.col[keep].astype(onp.int64)
    prio = onp.random.default_rng(0).permutation(n)
    colour = onp.full(n, -1, dtype=onp.int64)
    while True:
        unc = colour < 0
        if not unc.any():
            break
        # the best priority among each column's uncoloured neighbours
        live = unc[cols]
        best = onp.full(n, -1, dtype=onp.int64)
        onp.maximum.at(best, rows[live], prio[cols[live]])
        cand = unc & (prio > best)
        # groups used by the candidates' coloured neighbours
        sel = cand[rows] & ~unc[cols]
        k = int(colour.max()) + 2
        idx = onp.flatnonzero(cand)
        pos = onp.full(n, -1, dtype=onp.int64)
        pos[idx] = onp.arange(idx.size)
        used = onp.zeros((idx.size, k), dtype=bool)
        used[pos[rows[sel]], colour[cols[sel]]] = True
        colour[idx] = onp.argmin(used, axis=1)
    return colour


def seed_matrix(groups):
    """The ``n x k`` 0/1 matrix whose column ``g`` is the sum of the unit vectors of group
    ``g`` (``k`` groups)."""
    groups = onp.asarray(groups, dtype=onp.int64)
    k = int(groups.max()) + 1 if groups.size else 0
    S = onp.zeros((groups.size, k))
    S[onp.arange(groups.size), groups] = 1.0
    return S


def recover(pattern, groups, HS):
    """The sparse Hessian (CSR) from ``HS = H @ seed_matrix(groups)``: entry ``(i, j)`` of
    the pattern is ``HS[i, groups[j]]``. Each off-diagonal entry is read twice (as
    ``(i, j)`` and ``(j, i)``); the two reads are averaged, so the result is symmetric."""
    return HessianCompression(pattern, groups=groups).assemble(HS)


class HessianCompression:
    """A sparsity pattern, its column groups and seed matrix: ``recover(hvp)`` returns the
    sparse Hessian from ``ngroups`` calls of ``hvp(v) = H v`` (``assemble(HS)`` from the
    products ``HS = H @ seeds`` computed otherwise). Build it once per pattern."""

    def __init__(self, pattern, n=None, groups=None):
        self.pattern = as_pattern(pattern, n)
        self.n = self.pattern.shape[0]
        self.groups = column_groups(self.pattern) if groups is None else onp.asarray(groups)
        if self.groups.shape != (self.n,):
            raise SparsityError(f"groups has shape {self.groups.shape}; expected ({self.n},)")
        self.seeds = seed_matrix(self.groups)
        self.ngroups = self.seeds.shape[1]
        # the seeds as contiguous rows: an autograd product of a strided column is slower
        self._seed_rows = onp.ascontiguousarray(self.seeds.T)
        rows, cols = _rows_cols(self.pattern)
        # flat positions in (H @ seeds)^T (k x n, C order) of entry (i, j) and of (j, i)
        self._here = self.groups[cols] * self.n + rows
        self._mirror = self.groups[rows] * self.n + cols

    def assemble(self, HS):
        """The sparse Hessian from ``HS = H @ seeds`` (``n x ngroups``)."""
        HS = onp.asarray(HS, dtype=float)
        if HS.size != self.n * self.ngroups:
            raise SparsityError(f"expected {self.n} x {self.ngroups} products, got {HS.size}")
        return self._assemble(onp.ascontiguousarray(HS.reshape(self.n, self.ngroups).T))

    def _assemble(self, SH):
        """The same from ``SH = (H @ seeds)^T``, C-contiguous (``ngroups x n``)."""
        flat = SH.reshape(-1)
        vals = flat[self._here]
        vals += flat[self._mirror]
        vals *= 0.5
        P = self.pattern
        return sp.csr_matrix((vals, P.indices, P.indptr), shape=P.shape)

    def recover(self, hvp):
        """The sparse Hessian from ``ngroups`` products ``hvp(v) = H v``."""
        SH = onp.empty((self.ngroups, self.n))
        for g, s in enumerate(self._seed_rows):
            out = onp.asarray(hvp(s), dtype=float).reshape(-1)
            if out.size != self.n:
                raise SparsityError(f"hvp returned {out.size} values; expected {self.n}")
            SH[g] = out
        return self._assemble(SH)


class Factor:
    """A factorisation of a square sparse matrix ``A``: ``solve(b, trans=False)`` returns
    ``A^{-1} b`` (``A^{-T} b`` with ``trans``) for ``b`` of shape ``(n,)`` or ``(n, k)``.

    ``method``: ``"pttrf"``, ``"banded-cholesky"``, ``"banded-lu"``, ``"cholmod"`` or
    ``"splu"``; ``definite``: ``+1``/``-1`` when a Cholesky factorisation of ``A``/``-A``
    succeeded (a proof of definiteness), else ``0``."""

    def __init__(self, method, solve, n, definite=0):
        self.method, self._solve, self.n, self.definite = method, solve, n, definite

    def solve(self, b, trans=False):
        b = onp.asarray(b, dtype=float)
        out = self._solve(b.reshape(self.n, -1), bool(trans))
        return out.reshape(b.shape)


#: how many sparsity structures :func:`_structure_facts` remembers
STRUCTURE_CACHE = 4
_STRUCTURES = []  # [(indptr, indices, facts)], the most recently used last


def _structure_facts(A):
    """A dict of facts about the structure of the canonical CSR matrix ``A`` (its ordering,
    bandwidth, where its entries go in band storage), shared by every matrix of the same
    structure: the Hessians recovered from one ``hess_sparsity`` pattern, or a user's
    ``hess`` on a fixed pattern, are analysed once. Found by comparing the index arrays
    (about 1 ms at 10^6 rows, where the bandwidth alone takes 8)."""
    for i, (ptr, idx, facts) in enumerate(_STRUCTURES):
        if (
            ptr.shape == A.indptr.shape
            and idx.shape == A.indices.shape
            and onp.array_equal(ptr, A.indptr)
            and onp.array_equal(idx, A.indices)
        ):
            _STRUCTURES.append(_STRUCTURES.pop(i))
            return facts
    facts = {}
    _STRUCTURES.append((A.indptr.copy(), A.indices.copy(), facts))
    del _STRUCTURES[:-STRUCTURE_CACHE]
    return facts


def _band_storage(A, perm, bw=None, facts=None):
    """Rows of the band of the symmetric ``A[perm][:, perm]``, lower form for
    ``solveh_banded``: ``ab[d, j] = A[j + d, j]`` (``bw``: the bandwidth, if known;
    ``facts``: ``A``'s :func:`_structure_facts`, if looked up already)."""
    B = A[perm][:, perm].tocsr() if perm is not None else A
    n = A.shape[0]
    bw = bandwidth(B) if bw is None or perm is not None else bw
    if perm is None:  # scatter the lower entries by a map computed once per structure
        facts = _structure_facts(A) if facts is None else facts
        if facts.get("band-map", (None,))[0] != bw:
            rows, cols = _rows_cols(A)
            lower = onp.flatnonzero(rows >= cols)
            where = (rows[lower] - cols[lower]) * n + cols[lower]
            facts["band-map"] = (bw, lower, where)
        _, lower, where = facts["band-map"]  # (bincount sums duplicate entries)
        ab = onp.bincount(where, weights=A.data[lower], minlength=(bw + 1) * n)
        return ab.reshape(bw + 1, n)
    ab = onp.zeros((bw + 1, n))
    for d in range(bw + 1):
        ab[d, : n - d] = B.diagonal(-d)
    return ab


def factorize(A, definite=0, method="auto", symmetric=True):
    """Factorise the sparse (or dense) square matrix ``A`` once.

    ``definite``: ``+1`` if ``A`` should be positive definite, ``-1`` negative definite
    (then Cholesky of ``-A`` is tried, and its failure raises
    :class:`FactorizationError`: the matrix is not definite), ``0`` unknown. ``method``:
    ``"auto"`` (banded when the band after reverse Cuthill-McKee holds at most
    ``BAND_LIMIT`` entries and ``A`` is symmetric; CHOLMOD for a definite matrix when
    scikit-sparse is installed; ``splu`` otherwise), ``"banded"``, ``"cholmod"`` or
    ``"splu"``. Returns a :class:`Factor`."""
    if method not in ("auto", "banded", "cholmod", "splu"):
        raise InputError(f"factorize(method={method!r}): use auto, banded, cholmod or splu")
    if not (sp.isspmatrix_csr(A) and A.dtype == float):
        A = sp.csr_matrix(A, dtype=float)
    A.sum_duplicates()
    n = A.shape[0]
    if A.shape != (n, n):
        raise InputError(f"factorize needs a square matrix, not {A.shape}")
    if not onp.all(onp.isfinite(A.data)):
        raise FactorizationError("the matrix contains NaN or inf", method)
    if method == "auto":
        method = "splu"
        if symmetric:
            facts = _structure_facts(A)  # (the ordering is analysed once per structure)
            if "banded-order" not in facts:
                b = bandwidth(A)
                perm = None
                if b * n > BAND_LIMIT or b > 64:
                    perm = reverse_cuthill_mckee(A, symmetric_mode=True)
                    b = bandwidth(A[perm][:, perm])
                facts["banded-order"] = (perm, b)
            perm, b = facts["banded-order"]
            if (b + 1) * n <= BAND_LIMIT:
                return _banded(A, definite, perm, b, facts)
        if definite and _cholmod is not None:
            method = "cholmod"
    if method == "banded":
        if not symmetric:
            raise InputError("the banded factorisation needs a symmetric matrix; use splu")
        perm = reverse_cuthill_mckee(A, symmetric_mode=True)
        return _banded(A, definite, perm)
    if method == "cholmod":
        if _cholmod is None:
            raise InputError(
                "method='cholmod' needs scikit-sparse (pip install scikit-sparse, with the "
                "SuiteSparse library); use 'auto' or 'splu'."
            )
        if not definite:
            raise InputError("CHOLMOD needs a definite matrix (definite=+1 or -1)")
        s = float(definite)
        try:
            F = _cholmod((s * A).tocsc())
        except CholmodNotPositiveDefiniteError:
            raise FactorizationError(
                f"the Cholesky factorisation failed: the matrix is not "
                f"{'positive' if s > 0 else 'negative'} definite",
                "cholmod",
            ) from None
        return Factor("cholmod", lambda B, t: s * F(B), n, int(definite))
    return _splu(A, n)


def _splu(A, n):
    try:
        lu = spla.splu(A.tocsc())
    except RuntimeError as err:
        raise FactorizationError(f"the sparse LU factorisation failed: {err}", "splu") from None

    def solve(B, trans):
        return lu.solve(B, trans="T" if trans else "N")

    return Factor("splu", solve, n)


def _banded(A, definite, perm, bw=None, facts=None):
    n = A.shape[0]
    ab = _band_storage(A, perm, bw, facts)
    inv = None
    if perm is not None:
        inv = onp.empty_like(perm)
        inv[perm] = onp.arange(n)

    def wrap(inner):
        if perm is None:
            return inner
        return lambda B, t: inner(B[perm], t)[inv]

    s = float(definite) if definite else 1.0
    sign = "positive" if s > 0 else "negative"
    if definite and ab.shape[0] <= 2:  # tridiagonal (or diagonal): LAPACK pttrf, L D L^T
        d = s * ab[0]
        e = s * ab[1, : n - 1] if ab.shape[0] == 2 else onp.zeros(max(n - 1, 0))
        dd, ee, info = lapack.dpttrf(d, e)
        if info != 0:
            raise FactorizationError(
                f"the tridiagonal Cholesky (LDL^T) factorisation failed at pivot {info}: the "
                f"matrix is not {sign} definite",
                "pttrf",
            )

        def solve_pt(B, t):
            x, inf = lapack.dpttrs(dd, ee, B)
            return s * x

        return Factor("pttrf", wrap(solve_pt), n, int(definite))
    if definite:
        try:
            cb = sla.cholesky_banded(s * ab, lower=True)
        except onp.linalg.LinAlgError:
            raise FactorizationError(
                f"the banded Cholesky factorisation failed: the matrix is not {sign} definite",
                "banded-cholesky",
            ) from None
        return Factor(
            "banded-cholesky",
            wrap(lambda B, t: s * sla.cho_solve_banded((cb, True), B)),
            n,
            int(definite),
        )
    # symmetric, indefinite: banded LU (LAPACK gbtrf) of the full band
    k = ab.shape[0] - 1
    full = onp.zeros((3 * k + 1, n))
    for d in range(k + 1):  # lower diagonals, and their mirror above
        full[2 * k + d, : n - d] = ab[d, : n - d]
        full[2 * k - d, d:] = ab[d, : n - d]
    lub, piv, info = lapack.dgbtrf(full, k, k)
    if info != 0:
        raise FactorizationError(
            f"the banded LU factorisation failed (zero pivot {info}): the matrix is singular",
            "banded-lu",
        )

    def solve_lu(B, t):
        x, inf = lapack.dgbtrs(lub, k, k, B, piv, trans=1 if t else 0)
        return x

    return Factor("banded-lu", wrap(solve_lu), n)


def diagonal(A):
    """The diagonal of a dense or sparse matrix, as a float array."""
    return onp.asarray(A.diagonal() if sp.issparse(A) else onp.diag(A), dtype=float)


def jacobi_preconditioner(d):
    """``v -> v / |d|`` for the diagonal ``d`` of the matrix (``|d|`` keeps it positive
    definite, as CG and MINRES need, for an argmax too); zero or non-finite entries are
    replaced by the mean of the others."""
    a = onp.abs(onp.asarray(d, dtype=float))
    ok = onp.isfinite(a) & (a > 0)
    if not ok.all():
        a = onp.where(ok, a, onp.mean(a[ok]) if ok.any() else 1.0)
    inv = 1.0 / a
    return lambda v: inv * v


def ilu_preconditioner(A, drop_tol=1e-4, fill_factor=10):
    """An incomplete LU factorisation of the sparse ``A`` (``scipy.sparse.linalg.spilu``,
    natural ordering, no pivoting, so that it stays close to symmetric for a symmetric
    ``A``) as ``v -> M v`` with ``M ~ A^{-1}``."""
    try:
        ilu = spla.spilu(
            sp.csc_matrix(A),
            drop_tol=drop_tol,
            fill_factor=fill_factor,
            permc_spec="NATURAL",
            diag_pivot_thresh=0.0,
        )
    except RuntimeError as err:
        msg = f"the incomplete LU factorisation failed: {err}"
        raise FactorizationError(msg, "spilu") from None
    return ilu.solve
