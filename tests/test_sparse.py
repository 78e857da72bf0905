"""argminlib.sparse: patterns, colouring, recovery from products, factorisations and
preconditioners, checked against dense linear algebra."""

import numpy as onp
import pytest
import scipy.sparse as sp

from argminlib import ArgminError
from argminlib import sparse as S


def tridiagonal(n, seed=0, shift=2.0):
    rng = onp.random.default_rng(seed)
    d = shift + rng.random(n)
    e = -0.5 * rng.random(n - 1)
    return sp.diags([e, d, e], [-1, 0, 1], format="csr")


def random_symmetric(n, density=0.05, seed=0, shift=None):
    R = sp.random(n, n, density=density, random_state=seed)
    A = (R + R.T).tocsr()
    shift = float(abs(A).sum(axis=1).max()) + 1.0 if shift is None else shift
    return (A + shift * sp.eye(n)).tocsr()


def check_groups(P, groups):
    """No two columns of one group share a row."""
    P = S.as_pattern(P).astype(int)
    for g in range(groups.max() + 1):
        cols = P[:, onp.flatnonzero(groups == g)]
        assert cols.sum(axis=1).max() <= 1


def test_pattern_is_symmetric_with_diagonal():
    P = S.as_pattern(onp.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]]))
    assert (P != P.T).nnz == 0
    assert P.diagonal().all()
    assert P[1, 0] and P[0, 1] and not P[0, 2]


@pytest.mark.parametrize("bad", [onp.zeros((2, 3)), onp.zeros((3, 3)), "x"])
def test_pattern_errors(bad):
    with pytest.raises(S.SparsityError):
        S.as_pattern(bad, n=4)
    assert issubclass(S.SparsityError, ArgminError)


def test_bandwidth():
    assert S.bandwidth(tridiagonal(10)) == 1
    assert S.bandwidth(sp.eye(5, format="csr")) == 0
    assert S.bandwidth(sp.csr_matrix(onp.ones((4, 4)))) == 3


def test_tridiagonal_of_a_million_has_three_groups():
    groups = S.column_groups(tridiagonal(10**6))
    assert groups.max() + 1 == 3
    assert onp.array_equal(groups[:6], [0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_groups_are_valid(seed):
    A = random_symmetric(200, 0.03, seed)
    groups = S.column_groups(A)
    check_groups(A, groups)
    assert groups.max() + 1 < 100  # far fewer products than columns
    check_groups(A, S._greedy_groups(S.as_pattern(A)))


@pytest.mark.parametrize("make", [lambda: tridiagonal(50), lambda: random_symmetric(120)])
def test_recover_from_products(make):
    A = make()
    comp = S.HessianCompression(A)
    calls = []

    def hvp(v):
        calls.append(1)
        return A @ v

    H = comp.recover(hvp)
    assert len(calls) == comp.ngroups
    assert abs(H - A).max() < 1e-14
    HS = A @ S.seed_matrix(comp.groups)
    assert abs(S.recover(A, comp.groups, HS) - A).max() < 1e-14


@pytest.mark.parametrize("definite", [1, -1, 0])
@pytest.mark.parametrize("method", ["auto", "banded", "splu"])
def test_factorize_tridiagonal(definite, method):
    A = tridiagonal(300)
    A = -A if definite < 0 else A
    F = S.factorize(A, definite, method)
    rng = onp.random.default_rng(3)
    b = rng.standard_normal(300)
    B = rng.standard_normal((300, 4))
    Ad = A.toarray()
    assert onp.allclose(F.solve(b), onp.linalg.solve(Ad, b), atol=1e-12)
    assert onp.allclose(F.solve(B), onp.linalg.solve(Ad, B), atol=1e-12)
    assert onp.allclose(F.solve(b, trans=True), onp.linalg.solve(Ad.T, b), atol=1e-12)
    if method == "auto":
        assert F.method == ("pttrf" if definite else "banded-lu")
        assert F.definite == definite


@pytest.mark.parametrize("definite", [1, 0])
@pytest.mark.parametrize("method", ["auto", "banded", "splu"])
def test_factorize_general_sparse(definite, method):
    A = random_symmetric(150, 0.04, seed=5)
    F = S.factorize(A, definite, method)
    b = onp.random.default_rng(1).standard_normal(150)
    assert onp.allclose(A @ F.solve(b), b, atol=1e-10)
    assert onp.allclose(A.T @ F.solve(b, trans=True), b, atol=1e-10)


def test_factorize_nonsymmetric_uses_splu():
    A = (random_symmetric(60, seed=2) + sp.random(60, 60, 0.05, random_state=3)).tocsr()
    F = S.factorize(A, 0, symmetric=False)
    assert F.method == "splu"
    b = onp.ones(60)
    assert onp.allclose(A.T @ F.solve(b, trans=True), b, atol=1e-10)


@pytest.mark.parametrize("method", ["auto", "banded"])
def test_cholesky_failure_is_a_proof_of_indefiniteness(method):
    A = tridiagonal(100) - 2.2 * sp.eye(100)  # some eigenvalues below zero
    with pytest.raises(S.FactorizationError, match="not positive definite"):
        S.factorize(A, 1, method)
    A = random_symmetric(80, seed=1, shift=0.0)
    with pytest.raises(S.FactorizationError, match="not positive definite"):
        S.factorize(A, 1, method)


def test_singular_lu_raises():
    A = sp.csr_matrix(onp.diag([1.0, 0.0, 2.0]))
    with pytest.raises(S.FactorizationError):
        S.factorize(A, 0, "splu")
    with pytest.raises(S.FactorizationError):
        S.factorize(A, 0, "banded")


def test_nonfinite_and_bad_method():
    with pytest.raises(S.FactorizationError):
        S.factorize(sp.csr_matrix(onp.diag([1.0, onp.nan])), 1)
    with pytest.raises(ArgminError):
        S.factorize(sp.eye(3), 1, "magic")


def test_preconditioners():
    A = random_symmetric(100, 0.05, seed=4)
    d = S.diagonal(A)
    assert onp.allclose(d, A.toarray().diagonal())
    v = onp.arange(100.0)
    assert onp.allclose(S.jacobi_preconditioner(-d)(v), v / d)
    assert onp.all(onp.isfinite(S.jacobi_preconditioner(onp.r_[0.0, d[1:]])(v)))
    M = S.ilu_preconditioner(A, drop_tol=0.0, fill_factor=50)
    assert onp.allclose(A @ M(v), v, atol=1e-8)  # without dropping it is the exact LU


def test_recover_refuses_products_of_the_wrong_size():
    """Hostile review: an hvp returning a scalar was broadcast into a wrong Hessian."""
    comp = S.HessianCompression(sp.eye(7, format="csr") + sp.eye(7, k=1), 7)
    for bad in (lambda v: 3.0, lambda v: onp.ones(1), lambda v: onp.ones(14)):
        with pytest.raises(S.SparsityError, match="expected 7"):
            comp.recover(bad)


def test_structures_are_analysed_once_and_told_apart():
    """The ordering, bandwidth and band map are remembered per structure (the index arrays,
    compared by value): matrices of one structure with other values, of another structure
    of the same size and of a wider band, alternating, each get their own right factor."""
    n = 200
    rng = onp.random.default_rng(4)
    T1, T2 = tridiagonal(n, seed=1), tridiagonal(n, seed=2)  # one structure
    W = sp.diags(  # the same size, five diagonals
        [-0.2 * onp.ones(n - 2), -0.3 * onp.ones(n - 1), 3 + rng.random(n)]
        + [-0.3 * onp.ones(n - 1), -0.2 * onp.ones(n - 2)],
        [-2, -1, 0, 1, 2],
        format="csr",
    )
    G = random_symmetric(n, 0.03, seed=6)  # reordered (reverse Cuthill-McKee)
    b = rng.standard_normal(n)
    for A in [T1, W, T2, G, T1, W, G, T2]:
        F = S.factorize(A.copy(), 1)
        assert onp.allclose(A @ F.solve(b), b, atol=1e-10), F.method
    # the same row counts (indptr) as the tridiagonal, other columns: edges 0-1 and 2-3
    # of the chain replaced by 0-2 and 1-3 (bandwidth 2)
    A = T1.copy().tolil()
    A[0, 1] = A[1, 0] = A[2, 3] = A[3, 2] = 0.0
    A[0, 2] = A[2, 0] = A[1, 3] = A[3, 1] = -0.4
    A = A.tocsr()
    A.eliminate_zeros()
    assert onp.array_equal(A.indptr, T1.indptr) and not onp.array_equal(A.indices, T1.indices)
    for M in [T1, A, T1]:
        F = S.factorize(M.copy(), 1)
        assert onp.allclose(M @ F.solve(b), b, atol=1e-10)


def test_band_storage_sums_duplicates():
    """A CSR matrix with duplicate entries flagged canonical (a stale flag: scipy then skips
    sum_duplicates) is the sum of its entries, in band storage as in scipy's products."""
    n = 40
    T = sp.diags(  # pentadiagonal, definite
        [-0.2 * onp.ones(n - 2), -0.3 * onp.ones(n - 1), 3.0 * onp.ones(n)]
        + [-0.3 * onp.ones(n - 1), -0.2 * onp.ones(n - 2)],
        [-2, -1, 0, 1, 2],
        format="coo",
    )
    r, c = (onp.concatenate([a, a]) for a in (T.row, T.col))
    d = onp.concatenate([0.25 * T.data, 0.75 * T.data])
    o = onp.lexsort((c, r))
    indptr = onp.searchsorted(r[o], onp.arange(n + 1)).astype(onp.int32)
    M = sp.csr_matrix((d[o], c[o].astype(onp.int32), indptr), shape=(n, n))
    M.has_canonical_format = True
    b = onp.random.default_rng(0).standard_normal(n)
    F = S.factorize(M, 1)
    assert F.method == "banded-cholesky"
    assert onp.allclose(T.toarray() @ F.solve(b), b, atol=1e-12)
