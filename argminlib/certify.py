"""Second-order conditions: is ``y`` really a strict minimum (maximum, nonsingular root)?

A derivative from the implicit function theorem is only the derivative of the map the user
asked for if the solution is what they claim: an argmin needs ``f_YY`` positive definite,
an argmax negative definite, and a constrained one the Hessian of the Lagrangian definite
on the null space of the active constraints' Jacobian ``J`` (equivalently: the KKT matrix
has the inertia ``(n - p, p, 0)``). :func:`certify` checks this and returns a
:class:`Certificate`, or raises :class:`~argminlib.CurvatureError`,
:class:`~argminlib.SingularHessianError` or :class:`~argminlib.IllConditionedError`.

Two methods, chosen by :class:`Certify`:

* ``"dense"``: the exact eigenvalues of ``H`` (or of the reduced Hessian ``F^T H F``, ``F``
  an orthonormal basis of ``null(J)``), from the formed matrix: free when the linear solver
  forms ``A`` anyway.
* ``"lanczos"``: ``steps`` Lanczos iterations (with full reorthogonalisation, projected on
  ``null(J)``) from a seeded random start give Ritz values; the extreme ones converge first.
  Cost: ``steps`` products with ``A`` plus ``O(n steps^2)`` flops, once per solution. When
  the space has at most ``steps`` dimensions the run is complete and the eigenvalues are
  exact. Otherwise a negative (positive) Ritz value *proves* indefiniteness, while a
  definite result is an estimate: the smallest Ritz value bounds the smallest eigenvalue
  from above, so a tiny eigenvalue can be missed if the run is too short. Raise ``steps``
  for more assurance; ``certify=False`` switches the check off.

The Lanczos start is the sum of two unit vectors: a random one, drawn from this process's
entropy (:mod:`argminlib.randomness`; no problem can be built to be orthogonal to it), and
the residual ``F(x, z)`` of the point being certified. The random part carries the
Kuczyński–Woźniakowski probability bound; the normalisation of the sum at most halves its
components, which the count of steps pays for by using ``confidence / 2``. That holds
because the residual cannot depend on the random part (a problem written beforehand does
not see this process's entropy), and adding a fixed vector to a random one whose density
is symmetric and unimodal, as a uniform direction's components are, puts no more
probability near zero in any component (Anderson's inequality, 1955). An explicit
``Certify(seed=...)`` gives that up: whoever knows the seed can choose a ``z`` whose
residual cancels the random part along a direction of low curvature, as they could build
a Hessian orthogonal to it; use it to reproduce a run, not to certify. The residual
part makes the check robust where it matters most: a ``z`` off the solution along a
direction of low curvature has its residual along that direction, so Lanczos, started
there, finds that curvature in a few steps, whatever the rounding in the rest of ``F``.

Decisions are relative to the largest eigenvalue in size, so they do not change when ``f``
is multiplied by a constant.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, replace

import numpy as onp
import scipy.linalg as sla
import scipy.sparse as sp

from .exceptions import (
    CurvatureError,
    IllConditionedError,
    InputError,
    NonFiniteError,
    SingularHessianError,
    UncertifiedError,
)
from .linsolve import (
    Dense,
    LinearSolveError,
    Sparse,
    constraint_svd,
    null_basis,
    numerical_rank,
    probe,
)
from .linsolve import _norm2 as _norm
from .randomness import generator

__all__ = [
    "Certify",
    "Certificate",
    "certify",
    "certify_solution",
    "by_factorization",
    "as_certify",
    "lanczos",
    "equilibrated",
]

#: from this size on, a dense solve certifies a definite system by its Cholesky
#: factorisation (about a tenth of an eigendecomposition's cost)
CHOLESKY_CERTIFICATE_N = 500

#: Lanczos keeps every vector orthogonal to all previous ones up to this ``steps * dim``
FULL_REORTHOGONALIZATION = 2 * 10**6

#: without full reorthogonalisation, Lanczos asked for its extreme Ritz vectors keeps its
#: vectors, in single precision, while ``steps * dim`` stays below this (64 Mi floats,
#: 256 MiB: 67 steps at a million unknowns); past it, it drops them and repeats the run to
#: accumulate the two Ritz vectors in ``O(dim)`` memory. The Ritz vectors serve as test
#: directions (the user-Hessian check compares two products at the same vector), for which
#: single precision is enough
KEEP_VECTORS = 2**26


@dataclass(frozen=True)
class Certify:
    """How to certify the second-order conditions (``certify=`` of every problem).

    ``method``: ``"auto"`` (dense eigenvalues when the linear solver forms the matrix,
    Lanczos otherwise), ``"dense"`` or ``"lanczos"``. ``steps``: the Lanczos iterations
    (matrix products) always taken. Then, up to ``max_steps``, as many more as the
    Kuczyński–Woźniakowski bound for Lanczos from a random start asks for the answer to hold
    with probability at least ``1 - confidence``: to exclude an eigenvalue of the wrong sign
    below the lowest Ritz value ``theta`` of a spectrum of width ``w``, about
    ``log(1.65 sqrt(n) / confidence) sqrt(2 w / theta) / 2`` steps (as many as CG needs on
    the same matrix, give or take); a Ritz value of the wrong sign is a proof and stops it
    at once. If ``max_steps`` is not enough (and ``n`` is larger), the curvature is not
    certified: :class:`~argminlib.UncertifiedError`. For a stationary point (``mode =
    "stationary"``, where the smallest ``|eigenvalue|`` is interior) the iteration stops when
    the extreme Ritz values have moved by less than ``settle`` (relative) over five steps.
    ``rcond``: an eigenvalue below ``rcond`` times the largest in size makes the matrix
    ill-conditioned (an error: the derivative would lose about ``-log10(rcond)`` digits);
    lower it to accept such a matrix knowingly (for a factorising solver the condition is
    that of the matrix scaled by its diagonal, see :func:`certify`); ``seed``: ``None``
    (default) draws the random part of the start from this process's entropy
    (:mod:`argminlib.randomness`), an integer makes the run reproducible across processes
    but known to anyone, so that the probability bound no longer holds for every problem.
    """

    method: str = "auto"
    steps: int = 20
    rcond: float = 1e-10
    seed: int | None = None
    max_steps: int = 500
    settle: float = 1e-3
    confidence: float = 1e-3

    def __post_init__(self):
        if self.method not in ("auto", "dense", "lanczos"):
            raise InputError(f"Certify(method={self.method!r}): use 'auto', 'dense' or 'lanczos'")
        for name in ("steps", "max_steps"):
            v = getattr(self, name)
            if not (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1):
                raise InputError(f"Certify({name}={v!r}): use an integer >= 1")
        if self.max_steps < self.steps:
            raise InputError(
                f"Certify(max_steps={self.max_steps}) is below steps={self.steps}: use "
                "max_steps >= steps"
            )
        if self.seed is not None and not (
            isinstance(self.seed, numbers.Integral)
            and not isinstance(self.seed, bool)
            and self.seed >= 0
        ):
            raise InputError(f"Certify(seed={self.seed!r}): use None or a non-negative integer")
        for name in ("settle", "confidence"):
            v = getattr(self, name)
            if not (isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v < 1):
                raise InputError(f"Certify({name}={v!r}): use a number in (0, 1)")
        if not (isinstance(self.rcond, numbers.Real) and 0 <= self.rcond < 1):
            raise InputError(f"Certify(rcond={self.rcond!r}): use a number in [0, 1)")


def as_certify(value):
    """``True``/``None`` -> ``Certify()``; ``False`` -> ``None`` (off); a :class:`Certify`
    as it is; a method name -> ``Certify(method=name)``."""
    if value is True or value is None:
        return Certify()
    if value is False:
        return None
    if isinstance(value, Certify):
        return value
    if isinstance(value, str):
        return Certify(method=value)
    raise InputError(f"certify={value!r}: use True, False, a method name or argminlib.Certify(...)")


@dataclass(frozen=True)
class Certificate:
    """What was established about ``A = dF/dz`` at a solution (``H``: ``A`` itself, or for a
    KKT matrix its Hessian block).

    ``method``: ``"dense"``, ``"lanczos"`` or a factorisation's (``"cholesky"``,
    ``"cholesky-<method>"``); ``lowest``, ``highest``: the extreme eigenvalues of ``H`` (of
    the reduced Hessian on ``null(J)`` for a KKT matrix), exact or Ritz estimates (for a
    sparse Cholesky certificate, ``lowest`` is the lower bound ``lam_min(D H D) min(h_ii)``
    and ``highest`` Gershgorin's upper bound); ``smallest``: the smallest
    ``|eigenvalue|`` (estimate); ``exact``: whether they are the true eigenvalues;
    ``products``: matrix-vector products spent;
    ``space``: the dimension checked (``n``, or ``n - p`` with ``p`` active constraints);
    ``bound``: a lower bound on the smallest eigenvalue of ``H`` (of ``-H`` for a maximum;
    unconstrained problems) when one is established: the exact eigenvalue (dense), or half
    the lowest Ritz value after the Kuczyński–Woźniakowski count of Lanczos steps (holds
    with probability ``1 - Certify.confidence``); else ``None``. The Newton step is then at
    most ``norm(F) / bound`` long, so an exact enough solution is accepted without a solve
    (:meth:`argminlib.Solution.step_bound`). ``scaled``: ``(lowest, highest, smallest)``
    eigenvalues of ``D A D``, ``D`` the diagonal scaling of :func:`.equilibrated` (a
    factorising solver; with constraints, of the reduced Hessian of ``D H D``), on which
    definiteness, singularity and conditioning are judged (``None`` for ``lstsq``, whose
    pseudo-inverse is as accurate as ``A`` itself is conditioned). ``space == 0``: the
    active constraints fix ``y``, there is no curvature to certify.
    """

    method: str
    lowest: float
    highest: float
    smallest: float
    exact: bool
    products: int
    space: int
    direction: onp.ndarray | None = field(default=None, repr=False, compare=False)
    bound: float | None = None
    scaled: tuple | None = None

    @property
    def condition(self):
        """The condition number that governs the answer, that of ``D A D``, ``D`` scaling ``A`` to
        a unit diagonal, when ``scaled`` holds its extreme eigenvalues (a factorising solve,
        whose accuracy a diagonal scaling does not change), else ``max |eig| / min |eig|``
        of ``A`` (an estimate unless ``exact``)."""
        if self.space == 0:
            return 1.0  # (nothing to solve for: no digits to lose)
        lo, hi, small = self.scaled or (self.lowest, self.highest, self.smallest)
        big = max(abs(lo), abs(hi))
        return big / small if small > 0 else onp.inf

    def __repr__(self):
        if self.space == 0:
            return (
                f"Certificate(method={self.method!r}, space=0: the active constraints fix y, "
                "no curvature to certify)"
            )
        fields = ", ".join(
            f"{k}={getattr(self, k)!r}"
            for k in ("method", "lowest", "highest", "smallest", "exact", "products", "space")
        )
        return f"Certificate({fields}, bound={self.bound!r}, scaled={self.scaled!r})"

    @property
    def unscaled_condition(self):
        """``max |eig| / min |eig|`` of ``A`` itself: what a Krylov solve on ``A`` meets."""
        if self.space == 0:
            return 1.0
        big = max(abs(self.lowest), abs(self.highest))
        return big / self.smallest if self.smallest > 0 else onp.inf


def lanczos(
    matvec,
    dim,
    steps,
    seed=0,
    project=None,
    max_steps=None,
    settled=None,
    keep_vectors=False,
    name="matrix",
    start=None,
):
    """``steps`` Lanczos iterations on the symmetric operator ``matvec`` (vectors of length
    ``dim``), fully reorthogonalised (when ``steps * dim`` is at most
    ``FULL_REORTHOGONALIZATION``; above, each vector is orthogonalised against the previous
    two only, the three-term recurrence, whose extreme Ritz values stay accurate in floating
    point (Paige) at ``O(dim)`` instead of ``O(dim steps)`` work per step), restarted at
    random on breakdown (so ``dim`` steps give the whole spectrum). ``project`` maps a
    vector onto the subspace to work in. The start is a random unit vector (``seed``:
    ``None`` for this process's entropy, or an integer), plus ``start / |start|`` when
    ``start`` is given and not zero (see the module docstring).

    With ``max_steps`` and ``settled(previous_ritz, ritz)``: after ``steps``, every five
    steps the Ritz values are computed and the iteration goes on (up to ``max_steps``)
    until ``settled`` says they have converged enough.

    Returns ``(ritz_values, ritz_vectors, products)``, values ascending; ``ritz_vectors`` has
    a column per value with full reorthogonalisation; with the three-term recurrence it is
    ``None``, or with ``keep_vectors`` the lowest and highest Ritz vectors: from the kept
    Lanczos vectors (single precision: test directions, accurate to about ``1e-7``) while
    ``steps * dim <= KEEP_VECTORS``, else accumulated by a second, identical pass (twice
    the products, memory ``O(dim)``, not ``O(dim steps)``).
    A NaN or inf product raises :class:`~argminlib.NonFiniteError` (``name``: the matrix,
    for the message)."""
    proj = project or (lambda v: v)
    k0 = max(0, int(steps))
    k = max(k0, int(max_steps)) if (max_steps is not None and settled is not None) else k0
    full = k * dim <= FULL_REORTHOGONALIZATION
    # with full reorthogonalisation the Lanczos vectors as rows, filled in place; for the
    # three-term recurrence the last two (references: each step makes a new vector)
    Q = onp.empty((max(k, 1), dim)) if full else None

    lp = _LanczosPass(matvec, dim, k0, seed, proj, start, Q, name)
    run = lp.run

    kept = [] if (keep_vectors and not full) else None
    alpha, beta = run(k, settled, kept=kept)
    m = products = len(alpha)
    if m == 1:
        vals, vecs = onp.array(alpha), onp.ones((1, 1))
    else:
        vals, vecs = sla.eigh_tridiagonal(onp.array(alpha), onp.array(beta[: m - 1]))
    if full:
        return vals, Q[:m].T @ vecs, products
    if not keep_vectors:
        return vals, None, products
    # the lowest and highest Ritz vectors: from the kept vectors, or, when they did not fit,
    # accumulated by a second, identical pass (m more products, O(dim) memory)
    ends = vecs[:, [0, m - 1]] if m > 1 else vecs
    X = onp.zeros((ends.shape[1], dim))  # a row per Ritz vector

    def accumulate(j, q):  # X += ends[j] (outer) q, a BLAS axpy per row
        q = onp.asarray(q, dtype=float)  # (a kept vector is single precision)
        for i in range(X.shape[0]):
            sla.blas.daxpy(q, X[i], a=float(ends[j, i]))

    if kept:  # the vectors fitted: no second pass
        for j, q in enumerate(kept):
            accumulate(j, q)
    else:
        run(m, None, accumulate)
        products += m
    X /= onp.maximum(onp.linalg.norm(X, axis=1), onp.finfo(float).tiny)[:, None]
    return vals, X.T, products  # normalised, not orthonormal


class _LanczosPass:
    """The operator, start and storage of one Lanczos run (:func:`lanczos`): ``run`` makes
    one pass; the same seed, ``k`` and operator repeat a pass exactly."""

    def __init__(self, matvec, dim, k0, seed, proj, start, Q, name):
        self.matvec, self.dim, self.k0, self.seed = matvec, dim, k0, seed
        self.proj, self.start, self.Q, self.name = proj, start, Q, name

    def run(self, k, settled, emit=None, kept=None):
        """One pass; ``emit(j, q)`` sees each Lanczos vector, and ``kept`` (a list) keeps
        copies of them while they fit in ``KEEP_VECTORS`` (it is emptied when they do not).
        The same seed, ``k`` and operator repeat a pass exactly (the second pass below)."""
        rng = generator(self.seed, 1)
        previous, alpha, beta, scale = None, [], [], 0.0
        q = self.proj(rng.standard_normal(self.dim))
        q /= onp.linalg.norm(q)
        if self.start is not None:
            # only the part of the residual inside the subspace, and only where it is
            # resolved above the rounding of the projection (a residual along the
            # constraints' normals projects to noise, whose direction is not in the
            # subspace to working precision: it would corrupt every Ritz value)
            s0 = onp.asarray(self.start, dtype=float).reshape(-1)
            s = self.proj(s0)
            ns, n0 = _norm(s), _norm(s0)
            if 0 < ns < onp.inf and ns > 1e3 * onp.finfo(float).eps * n0:
                q = self.proj(q + s / ns)  # (projected again: "twice is enough")
                q /= onp.linalg.norm(q)
        last = []  # the three-term recurrence's previous vectors
        for j in range(k):
            if self.Q is not None:
                self.Q[j] = q
            else:
                last = [last[-1], q] if last else [q]
            if emit is not None:
                emit(j, q)
            if kept is not None:
                if (j + 1) * self.dim <= KEEP_VECTORS:
                    kept.append(q.astype(onp.float32))
                else:  # too many to keep: drop them (the caller repeats the run instead)
                    kept.clear()
                    kept = None
            w = onp.asarray(self.matvec(q), dtype=float).reshape(-1)
            a = float(q @ w)
            if not onp.isfinite(a):  # NaN or inf products (checked for free, on q^T A q)
                raise NonFiniteError(
                    f"The {self.name} gives NaN or inf products at this point (Lanczos step "
                    f"{j + 1}); check f (and hess/hessp if given) and its second derivatives "
                    "at y, e.g. a non-smooth term such as |y|^1.5 at 0."
                )
            alpha.append(a)
            if j == k - 1:
                break
            if (
                settled is not None
                and j + 1 >= self.k0
                and k > self.k0
                and (j + 1 - self.k0) % 5 == 0
            ):
                ritz = _ritz(alpha, beta)
                if previous is not None and settled(previous, ritz):
                    break
                previous = ritz
            B = self.Q[: j + 1] if self.Q is not None else last
            before = _norm(w)
            w = self.proj(_orthogonalize(w, B))
            b = _norm(w)
            if b < 0.7 * before:  # cancellation: Gram-Schmidt once more ("twice is enough")
                w = self.proj(_orthogonalize(w, B, fresh=True))
                b = _norm(w)
            if not onp.isfinite(b):
                raise NonFiniteError(
                    f"The {self.name}'s products overflow (their norm is inf): rescale f or y."
                )
            scale = max(scale, abs(a), b)
            if b <= 1e-10 * max(scale, onp.finfo(float).tiny):  # invariant subspace: restart
                w = self.proj(rng.standard_normal(self.dim))
                for _ in range(2):
                    w = self.proj(_orthogonalize(w, B, fresh=True))
                nw = float(onp.linalg.norm(w))
                if nw <= 1e-8:  # the whole space is spanned
                    break
                beta.append(0.0)
                q = w / nw
            else:
                beta.append(b)
                q = w / b
        return alpha, beta


def _ritz(alpha, beta):
    m = len(alpha)
    if m == 1:
        return onp.array(alpha)
    return sla.eigvalsh_tridiagonal(onp.array(alpha), onp.array(beta[: m - 1]))


def _needed_steps(lowest, highest, dim, confidence):
    """Lanczos steps after which, with probability ``1 - confidence``, no eigenvalue lies
    below ``lowest / 2`` (``lowest > 0``), by the Kuczyński–Woźniakowski bound
    ``P(error > eps w) <= 1.648 sqrt(n) exp(-sqrt(eps) (2k - 1))`` for a random start, at
    ``confidence / 2`` (the start's random part is halved at most by the residual added to
    it: see the module docstring)."""
    width = max(highest - lowest, 0.0)
    if width == 0.0:
        return 1
    eps = 0.5 * lowest / width
    tail = onp.log(2 * 1.648 * onp.sqrt(dim) / confidence)
    return int(onp.ceil((tail / onp.sqrt(eps) + 1) / 2))


def _enough(sign, dim, config):
    """Has the Lanczos run done enough to decide the certificate for ``sign``?"""

    def moved(a, b):
        return abs(a - b) > config.settle * max(abs(a), abs(b), onp.finfo(float).tiny)

    def test(previous, ritz):
        lo, hi = float(ritz[0]), float(ritz[-1])
        if sign > 0:
            return lo <= 0 or len(ritz) >= _needed_steps(lo, hi, dim, config.confidence)
        if sign < 0:
            return hi >= 0 or len(ritz) >= _needed_steps(-hi, -lo, dim, config.confidence)
        if previous is None:
            return False
        return not (moved(previous[0], ritz[0]) or moved(previous[-1], ritz[-1]))

    return test


def _orthogonalize(w, B, fresh=False):
    """``w - B^T (B w)`` for the orthonormal rows ``B`` (an array, or a list of one or two
    vectors: then as vector operations, on a copy of ``w``, or in place when ``fresh``: ``w``
    is a float array of the caller's own)."""
    if isinstance(B, list):
        w = w if fresh else onp.array(w, dtype=float)  # (w may be the user's product)
        for q in B:
            sla.blas.daxpy(q, w, a=-float(q @ w))
        return w
    return w - B.T @ (B @ w)


def _kkt_parts(system):
    """``(H products, p, n, row-space basis of J)`` of a KKT system (``p = 0``: plain); the
    basis is ``p x n`` (orthonormal rows), the null space is formed only where a dense
    certificate needs it (:func:`~argminlib.linsolve.null_basis`)."""
    p = system.kkt_rows
    n = system.n - p
    if not p:
        return system.apply, 0, n, None
    # rows normalised: the rank and the subspaces do not depend on each constraint's units
    _, sv, Vt, _ = constraint_svd(system)  # Vt: the row space, p x n
    rank = numerical_rank(sv)
    if rank < p:
        raise SingularHessianError(
            f"The constraint Jacobian in the {system.name} has rank {rank} but {p} rows "
            "(singular values down to {:.1e}): the active constraints are redundant or "
            "degenerate at y, so the multipliers and the derivative are not unique. "
            "Remove the dependent constraints.".format(sv[-1] if sv.size else 0.0)
        )
    zero = onp.zeros(p)

    def H(v):
        return system.apply(onp.concatenate([v, zero]))[:n]

    return H, p, n, Vt


def equilibrated(A, sweeps=60):
    """``D A D``: the symmetric ``A`` with every row's largest ``|entry|`` brought to 1 by a
    diagonal ``D`` (symmetric max-norm equilibration, Bunch 1971; iterated as Ruiz 2001,
    ``d_i <- d_i / sqrt(max_j |(D A D)_ij|)``, from ``D = |diag A|^(-1/2)`` where the
    diagonal is not zero, until each row's maximum is within a factor 2 of 1).

    Basis: a congruence keeps the inertia (Sylvester), so definiteness and singularity are
    judged on ``D A D`` as well as on ``A``; and the accuracy of a factorised solve does
    not depend on a diagonal scaling of the variables. Cholesky's backward error is
    componentwise, ``|dA_ij| <= c eps sqrt(|a_ii a_jj|)`` (Demmel 1989), so the error of
    ``A^{-1} b`` in the scaled variables is bounded by ``eps cond(D A D)``; for a definite
    ``A`` the start is already the fixed point (unit diagonal, ``|a_ij| <= 1``), and that
    unit-diagonal scaling is within a factor ``n`` of the best one (van der Sluis 1969).
    For an indefinite ``A`` (LU with pivoting, ``mode='stationary'``), whose diagonal may
    be zero, the error is governed by Skeel's condition ``|| |A^{-1}| |A| ||``, which no row
    scaling changes and which the equilibrated matrix's condition bounds. A badly scaled
    but isolated minimum (weights ``exp(x)`` of 1e12 next to 1), or a saddle
    ``[[0, 1e-6], [1e-6, 1]]``, is therefore not ill-conditioned for a factorising solver."""
    d = _equilibration(A, sweeps)
    return d[:, None] * A * d


def _equilibration(A, sweeps=60):
    """The diagonal ``d`` of :func:`equilibrated` (``D A D = d[:, None] * A * d``), for one
    matrix or a stack ``(..., n, n)`` of them (each block on its own: ``d`` is
    ``(..., n)``; :mod:`argminlib.batch` scales its blocks with it)."""
    a = onp.abs(onp.asarray(A, dtype=float))
    diag = onp.diagonal(a, axis1=-2, axis2=-1)
    d = onp.where(diag > 0, 1.0 / onp.sqrt(onp.where(diag > 0, diag, 1.0)), 1.0)
    if a.shape[-1] == 0:
        return d
    for _ in range(sweeps):
        r = onp.max(d[..., :, None] * a * d[..., None, :], axis=-1)
        r = onp.where(r > 0, r, 1.0)  # (a zero row stays as it is)
        done = onp.all((r >= 0.5) & (r <= 2.0), axis=-1)
        if onp.all(done):
            break
        d = onp.where(done[..., None], d, d / onp.sqrt(r))
    return d


def certify(
    system,
    sign,
    config,
    *,
    forms_matrix=False,
    factorizes=False,
    allow_singular=False,
    direction=False,
    whole_kkt=True,
    residual=None,
):
    """Certify the :class:`~argminlib.LinearSystem` ``system`` for ``sign`` (+1: minimum,
    -1: maximum, 0: nonsingular root). Returns a :class:`Certificate` or raises.

    ``residual``: ``F(x, z)`` at the point certified (length ``system.n``); Lanczos starts
    from a random vector plus its direction (its primal part, for a KKT system): see the
    module docstring.

    ``allow_singular``: a semidefinite (for ``sign = 0``: singular) matrix is accepted (the
    solver returns the minimum-norm solution); the wrong sign is still an error.
    ``whole_kkt``: the solver works on the whole KKT matrix (all but
    :class:`~argminlib.NullSpace`), whose condition grows as ``1 / sigma^2`` with the
    smallest singular value ``sigma`` of the constraints' Jacobian (rows normalised):
    nearly dependent constraints (``sigma < sqrt(rcond)``) raise
    :class:`~argminlib.IllConditionedError`."""
    H, p, n, Vt = _kkt_parts(system)
    if p and whole_kkt and config.rcond > 0:
        _check_constraint_angles(system, config)
    dim = n - p
    method = config.method
    if method == "auto":
        method = "dense" if (forms_matrix or dim <= config.steps) else "lanczos"
    if dim == 0:
        return Certificate(method, onp.inf, -onp.inf, onp.inf, True, p, 0)
    if not (system.symmetric or p):  # a non-symmetric root problem: singular values
        return _certify_general(system, config, method, dim, allow_singular, residual)
    if method == "dense":
        vals, vecs, scaled_vals = _dense_spectrum(system, p, n, Vt, factorizes)
        products, exact = (0 if forms_matrix else system.n), True
    else:
        start = None if residual is None else onp.asarray(residual, dtype=float)[:n]
        vals, vecs, products = _lanczos_spectrum(system, sign, config, H, n, Vt, direction, start)
        scaled_vals = None
        # dim steps give the exact eigenvalues only with full reorthogonalisation
        exact = len(vals) >= dim and len(vals) * dim <= FULL_REORTHOGONALIZATION
    k = int(onp.argmin(vals)) if sign >= 0 else int(onp.argmax(vals))
    cert = Certificate(
        method,
        float(vals[0]),
        float(vals[-1]),
        float(onp.min(onp.abs(vals))),
        bool(exact),
        int(products),
        int(dim),
        vecs[:, 0 if k == 0 else -1] if vecs is not None and vecs.size else None,
        # (a minimum-norm solve is a pseudo-inverse, whose error grows with the condition
        # of A itself: it is judged unscaled, the scaled spectrum serving its rank test)
        scaled=None
        if scaled_vals is None or allow_singular
        else (float(scaled_vals[0]), float(scaled_vals[-1]), float(onp.min(onp.abs(scaled_vals)))),
    )
    _judge(system, sign, cert, config, allow_singular, vals, scaled_vals)
    if method == "lanczos" and not exact and sign and not _enough(sign, dim, config)(None, vals):
        _uncertified(system, cert, config, sign)
    if sign and not p:
        low = cert.lowest if sign > 0 else -cert.highest
        # exact eigenvalues (less round-off), or half the lowest Ritz value: what the
        # Kuczynski-Wozniakowski count of steps guarantees (with probability 1 - confidence)
        big = max(abs(cert.lowest), abs(cert.highest))
        low = low - max(100, dim) * onp.finfo(float).eps * big if exact else 0.5 * low
        if low > 0 and not allow_singular:
            cert = replace(cert, bound=float(low))
    return cert


def _check_constraint_angles(system, config):
    """Nearly dependent constraints (normalised Jacobian's smallest singular value below
    ``sqrt(rcond)``) raise :class:`~argminlib.IllConditionedError`: the whole KKT matrix's
    condition grows as its inverse square."""
    sv = constraint_svd(system)[1]
    sigma = float(sv[-1]) / float(sv[0])
    if sigma < onp.sqrt(config.rcond):
        raise IllConditionedError(
            f"The active constraints in the {system.name} are nearly dependent: their "
            f"Jacobian, each row normalised, has smallest singular value {sigma:.1e} < "
            f"sqrt(rcond) = {onp.sqrt(config.rcond):.0e}. The KKT matrix's condition "
            "grows as 1 / sigma^2, so a solve with it would lose about "
            f"{2 * onp.log10(1 / sigma):.0f} digits. Use solver='nullspace' (it works on "
            "the null space of the constraints and loses about half as many), remove or "
            "merge the nearly dependent constraints, or pass "
            f"certify=argminlib.Certify(rcond={0.1 * sigma**2:.0e}) to accept it knowingly."
        )


def _dense_spectrum(system, p, n, Vt, factorizes):
    """``(eigenvalues, eigenvectors, scaled)`` of the formed symmetric ``H`` (of the
    reduced Hessian ``F^T H F`` with constraints), with ``scaled`` (for a factorising
    solver, else ``None``) the eigenvalues of the same matrix after :func:`equilibrated`.

    With constraints the variables are scaled as without them, ``D`` from
    :func:`equilibrated` ``H`` (the constraints' rows are then normalised, which does not
    change their null space), and the reduced Hessian is that of ``D H D`` on the null
    space of ``J D``. Basis: ``diag(D, E) K diag(D, E)`` is a congruence of the KKT matrix
    ``K = [[H, J^T], [J, 0]]``, whose inertia is that of the reduced Hessian plus
    ``(p, p, 0)`` for a ``J`` of full rank (Gould 1985), so the scaled reduced Hessian has
    the signs and the zero count of the unscaled one; and a factorised KKT solve is as
    accurate as the scaled system is conditioned. (Equilibrating ``K`` as a whole would let
    constraints in units far apart scale the variables apart.)"""
    A = system.matrix()
    Hm = 0.5 * (A[:n, :n] + A[:n, :n].T)
    F = null_basis(Vt) if p else None
    if p:
        Hm = F.T @ Hm @ F
    # (only a factorising solve is as accurate as the scaled matrix; a Krylov solve meets
    # the condition of A itself, so it is judged unscaled even when A is formed here)
    scaled = None
    if factorizes and not p:
        scaled = onp.linalg.eigvalsh(equilibrated(Hm))
    elif factorizes:
        H = 0.5 * (A[:n, :n] + A[:n, :n].T)
        d = _equilibration(H)
        # rows brought to a largest entry of 1 before and after the scaling (rows in units
        # of 1e300 overflow otherwise); a row's scale does not change the null space
        Js = _unit_rows(_unit_rows(onp.asarray(A[n:, :n], dtype=float)) * d)
        Fs = null_basis(onp.linalg.svd(Js, full_matrices=False)[2])
        scaled = onp.linalg.eigvalsh(Fs.T @ (d[:, None] * H * d) @ Fs)
    vals, vecs = onp.linalg.eigh(Hm)
    return vals, (F @ vecs if p else vecs), scaled


def _unit_rows(J):
    """``J`` with each nonzero row divided by its largest ``|entry|``."""
    top = onp.max(onp.abs(J), axis=1, initial=0.0)
    return J / onp.where(top > 0, top, 1.0)[:, None]


def _lanczos_spectrum(system, sign, config, H, n, Vt, direction, start):
    """``(Ritz values, Ritz vectors or None, products)`` of ``H`` (projected on the
    constraints' null space), run until :func:`_enough` decides ``sign``."""
    p = system.kkt_rows
    dim = n - p
    project = None
    if p:
        R = Vt[:p]

        def project(v):
            return v - R.T @ (R @ v)

    return lanczos(
        H,
        n,
        min(config.steps, dim),
        config.seed,
        project,
        max_steps=min(config.max_steps, dim),
        settled=_enough(sign, dim, config),
        keep_vectors=direction,
        name=system.name,
        start=start,
    )


def _certify_general(system, config, method, dim, allow_singular, residual):
    """A non-symmetric root problem: invertibility judged on the singular values (exact
    from the formed matrix, or Lanczos on ``A^T A``)."""
    if method == "dense":
        s = onp.linalg.svd(system.matrix(), compute_uv=False)
        return _judge_general(system, s, config, allow_singular)

    def op(v):
        return system.T.apply(system.apply(v))

    vals, _, products = lanczos(
        op,
        dim,
        min(config.steps, dim),
        config.seed,
        max_steps=min(config.max_steps, dim),
        settled=_enough(+1, dim, config),
        name=f"product A^T A of the {system.name}",
        start=residual,
    )
    s = onp.sqrt(onp.maximum(vals[::-1], 0.0))
    cert = _judge_general(system, s, config, allow_singular, exact=len(vals) >= dim)
    if len(vals) < dim and not _enough(+1, dim, config)(None, vals):
        _uncertified(system, cert, config, +1)
    return cert


def _uncertified(system, cert, config, sign):
    lo, hi = (cert.lowest, cert.highest) if sign > 0 else (-cert.highest, -cert.lowest)
    need = _needed_steps(lo, hi, cert.space, config.confidence)
    raise UncertifiedError(
        f"The curvature of the {system.name}{_where(system)} could not be certified in "
        f"{cert.products} products: the Lanczos estimate (eigenvalues from {cert.lowest:.3e} "
        f"to {cert.highest:.3e}) would need about {need} steps to exclude an eigenvalue of "
        f"the wrong sign (the matrix is ill-conditioned for this check, or has an eigenvalue "
        f"of the wrong sign not yet found). Use a solver that forms the matrix "
        f"(solver='dense' or 'sparse'), pass certify=argminlib.Certify(max_steps={need + 20}), "
        "or certify=False if you know the curvature.",
        certificate=cert,
    )


def _where(system):
    return " on the null space of the active constraints' Jacobian" if system.kkt_rows else ""


def _judge(system, sign, cert, config, allow_singular, vals=None, scaled_vals=None):
    """Raise unless ``cert`` shows what ``sign`` claims, with a condition within
    ``1 / rcond``: on the spectrum of ``D A D`` when the certificate has it
    (:func:`equilibrated`: a congruence, so the inertia and the count of zero eigenvalues
    are those of ``A``, and a factorising solve's accuracy does not change), else on
    that of ``A``; relative to the largest eigenvalue in size, so the decision does not
    change when ``f`` is multiplied by a constant. A minimum-norm solve (``lstsq``) also
    needs :func:`_same_rank`."""
    lowest, highest = cert.lowest, cert.highest
    smallest, scaled_note = cert.smallest, ""
    if cert.scaled is not None:
        lowest, highest, smallest = cert.scaled
        scaled_note = " after scaling it to a unit diagonal (which keeps its inertia and the \
accuracy of a factorised solve)"
    judged = scaled_vals if cert.scaled is not None else vals
    big = max(abs(lowest), abs(highest), onp.finfo(float).tiny)
    zero = max(100, cert.space) * onp.finfo(float).eps * big
    if cert.exact:
        how = scaled_note
    elif cert.method == "lanczos":
        how = f" (Lanczos estimate, {cert.products} products)"
    else:
        how = f" ({cert.method} estimate{scaled_note})"
    where = _where(system)
    name = system.name
    if sign:
        # work with s*A: it must be positive definite
        lo, hi = (lowest, highest) if sign > 0 else (-highest, -lowest)
        want, other = ("minimum", "max") if sign > 0 else ("maximum", "min")
        if scaled_vals is not None and cert.scaled is None:
            # the inertia is read on D A D wherever it was formed (a minimum-norm solve is
            # judged unscaled for its accuracy only): -1e-3 beside 1e12 is a sign, not zero
            s_lo, s_hi = float(scaled_vals[0]), float(scaled_vals[-1])
            s_lo, s_hi = (s_lo, s_hi) if sign > 0 else (-s_hi, -s_lo)
            s_zero = max(100, cert.space) * onp.finfo(float).eps * max(abs(s_lo), abs(s_hi))
            if s_lo < -s_zero:
                raise _wrong_sign(system, sign, cert, s_hi <= s_zero, "")
        if lo < -zero:  # (the inertia of D A D is that of A: named by A's eigenvalues)
            named = "" if cert.exact else how.replace(scaled_note, "")
            raise _wrong_sign(system, sign, cert, hi <= zero, named)
        if allow_singular:
            _same_rank(system, cert, vals, scaled_vals)
        if lo <= zero:
            if allow_singular:
                spectrum = [lowest, highest] if judged is None else judged
                _check_nonzero(system, spectrum, zero, big, config, how)
                return
            against = (
                f"against largest |eigenvalue| {big:.3e}"
                if max(abs(lowest), abs(highest)) > 0
                else "(it is zero there)"
            )
            sure = _singular(cert, lo) == "singular"
            raise SingularHessianError(
                f"The {name}{where} is {_singular(cert, lo)}: eigenvalue {sign * lo:.3e} "
                f"{against}{how}, so y "
                + (
                    f"is not a strict (isolated) {want} and its derivative is undefined"
                    if sure
                    else f"may not be a strict (isolated) {want}, and this solver cannot "
                    "compute its derivative accurately if it is"
                )
                + ". Regularise the problem (e.g. add a small strongly "
                f"convex term), or use solver='lstsq' for the minimum-norm derivative"
                f"{_scaled_advice(cert)}.",
                certificate=cert,
            )
        if lo <= config.rcond * big:
            raise _ill_conditioned(system, sign, cert, config, lo, big, how)
        return
    small = smallest
    if allow_singular:
        _same_rank(system, cert, vals, scaled_vals)
    if small <= zero and allow_singular:
        spectrum = [lowest, highest] if judged is None else judged
        _check_nonzero(system, spectrum, zero, big, config, how)
        return
    if small <= zero:
        raise SingularHessianError(
            f"The {name}{where} is {_singular(cert, small)}: eigenvalue of size {small:.3e} "
            f"against largest {big:.3e}{how}. The solution is not locally unique, so its "
            "derivative is undefined; regularise the problem, or use solver='lstsq' for the "
            f"minimum-norm derivative{_scaled_advice(cert)}.",
            certificate=cert,
        )
    if small <= config.rcond * big:
        raise IllConditionedError(
            f"The {name}{where} is ill-conditioned: smallest |eigenvalue| {small:.3e} against "
            f"largest {big:.3e}{how}. Rescale or regularise; to accept it knowingly pass "
            f"certify=argminlib.Certify(rcond={0.1 * small / big:.0e}).",
            certificate=cert,
        )


def _singular(cert, value):
    """What an eigenvalue ``value`` at round-off level says: singular where it was judged
    after the diagonal scaling, or is exactly zero (a congruence keeps the count of zero
    eigenvalues); otherwise it may be a badly scaled variable, which no check on the
    unscaled matrix (Lanczos) can tell from a zero."""
    if cert.scaled is not None or value == 0:
        return "singular"
    return "singular, or too badly scaled to tell"


def _scaled_advice(cert):
    if cert.scaled is not None:
        return ""
    return (
        "; if y is isolated but its variables are badly scaled, a factorising solver "
        "(solver='dense', or 'sparse' with hess_sparsity=) judges it after scaling to a unit "
        "diagonal"
    )


def _wrong_sign(system, sign, cert, every, how):
    """The :class:`~argminlib.CurvatureError` of a ``y`` that is not what ``sign`` claims:
    the other extremum (``every`` eigenvalue of the wrong sign) or a saddle."""
    want, other = ("minimum", "max") if sign > 0 else ("maximum", "min")
    where, name = _where(system), system.name
    if every:
        msg = (
            f"y is a local {'maximum' if sign > 0 else 'minimum'}, not a {want}: every "
            f"eigenvalue of the {name}{where} is {'<= 0' if sign > 0 else '>= 0'} "
            f"(between {cert.lowest:.3e} and {cert.highest:.3e}){how}. Use "
            f"arg{other} / mode='{other}' if that is what you want, or re-solve from "
            "another start."
        )
    else:
        msg = (
            f"y is a saddle point, not a strict local {want}: the {name}{where} has "
            f"eigenvalues of both signs (from {cert.lowest:.3e} to {cert.highest:.3e})"
            f"{how}. Re-solve from another start, or use mode='stationary' if a saddle "
            "is intended."
        )
    a_lo = cert.lowest if sign > 0 else -cert.highest
    return CurvatureError(msg, eigenvalue=sign * a_lo, certificate=cert)


def _ill_conditioned(system, sign, cert, config, lo, big, how):
    """The :class:`~argminlib.IllConditionedError` of a definite matrix of condition
    ``big / lo`` above ``1 / rcond``, with the advice that fits its certificate."""
    name, where = system.name, _where(system)
    kind = "positive" if sign > 0 else "negative"
    return IllConditionedError(
        f"The {name}{where} is {kind} definite but ill-conditioned: smallest "
        f"|eigenvalue| {lo:.3e} against largest {big:.3e} (condition number about "
        f"{big / lo:.1e} > 1/rcond = {1 / max(config.rcond, 1e-300):.0e}){how}; the "
        f"derivative would lose about {onp.log10(big / lo):.0f} digits. Rescale the "
        "variables or regularise the problem"
        + (
            "; a factorising solver (solver='dense', or 'sparse' with hess_sparsity=) "
            "judges the condition after scaling to a unit diagonal, which is what "
            "its accuracy depends on"
            if cert.scaled is None
            else ""
        )
        + "; to accept it knowingly pass "
        f"certify=argminlib.Certify(rcond={0.1 * lo / big:.0e}).",
        certificate=cert,
    )


def _zero_count(vals, space):
    """How many of ``vals`` are zero at round-off level: ``|v| <= max(100, space) eps
    max |v|``, the threshold of :func:`_judge` and of the ``lstsq`` pseudo-inverse."""
    a = onp.abs(onp.asarray(vals, dtype=float)).reshape(-1)
    big = float(a.max()) if a.size else 0.0
    return int(onp.sum(a <= max(100, space) * onp.finfo(float).eps * big))


def _same_rank(system, cert, vals, scaled_vals):
    """A minimum-norm solve cuts off the eigenvalues of ``A`` at round-off of its largest;
    it drops real curvature when ``A`` has more of them than ``D A D``
    (:func:`equilibrated`), whose zero eigenvalues are exactly ``A``'s (a congruence keeps
    their count) but which resolves a badly scaled direction. Raise then: the
    minimum-norm answer would silently lack that direction."""
    if vals is None or scaled_vals is None:
        return
    cut, real = _zero_count(vals, cert.space), _zero_count(scaled_vals, cert.space)
    if cut > real:
        a = onp.sort(onp.abs(onp.asarray(vals, dtype=float)))
        raise IllConditionedError(
            f"The {system.name} is badly scaled, not singular{' only' if real else ''}: "
            f"the minimum-norm solve (solver='lstsq') would treat {cut - real} direction(s) "
            f"of curvature as zero (|eigenvalue| {a[cut - 1]:.3e} against largest "
            f"{a[-1]:.3e}), yet after scaling it to a unit diagonal it has {real} zero "
            "eigenvalue(s). Use solver='dense' (or 'sparse'), which solve it as it is, or "
            "rescale the variables.",
            certificate=cert,
        )


def _check_nonzero(system, vals, zero, big, config, how):
    """For the minimum-norm derivative (``lstsq``): the eigenvalues treated as zero must be
    round-off, and the others well away from zero; otherwise the minimum-norm answer differs
    from the true derivative of a merely ill-conditioned matrix."""
    a = onp.abs(onp.asarray(vals, dtype=float)).reshape(-1)
    a = a[a > zero]
    small = float(a.min()) if a.size else onp.inf
    if small <= config.rcond * big:
        raise IllConditionedError(
            f"The {system.name}{_where(system)} is numerically singular but not at round-off "
            f"level: its smallest nonzero |eigenvalue| is {small:.3e} against largest "
            f"{big:.3e}{how}, so whether it is zero is not clear and the minimum-norm "
            "derivative may differ from the true one. Regularise the problem, or pass "
            f"certify=argminlib.Certify(rcond={0.1 * small / big:.0e}) to invert it as it is.",
        )


def _judge_general(system, s, config, allow_singular, exact=True):
    big = max(float(s[0]), onp.finfo(float).tiny)
    small = float(s[-1])
    cert = Certificate("singular-values", small, big, small, exact, 0, system.n)
    zero = max(100, system.n) * onp.finfo(float).eps * big
    if allow_singular and small <= zero:
        _check_nonzero(system, s, zero, big, config, "")
        return cert
    if small <= zero:
        raise SingularHessianError(
            f"The {system.name} is singular: smallest singular value {small:.3e} against "
            f"largest {big:.3e}. The derivative is undefined here.",
            certificate=cert,
        )
    if small <= config.rcond * big:
        raise IllConditionedError(
            f"The {system.name} is ill-conditioned: smallest singular value {small:.3e} "
            f"against largest {big:.3e}. Rescale, or pass "
            f"certify=argminlib.Certify(rcond={0.1 * small / big:.0e}) to accept it.",
            certificate=cert,
        )
    return cert


# --- certificates from a factorisation the solve needs anyway ----------------------------


def certify_solution(system, sign, config, solver, *, direction=False, residual=None):
    """The one entry point: the certificate of ``system`` for ``sign`` with ``solver``:
    by its factorisation where it has one (:func:`by_factorization`), else by
    :func:`certify` (eigenvalues of the formed matrix, or Lanczos)."""
    cert = by_factorization(system, sign, config, solver)
    if cert is not None:
        return cert
    return certify(
        system,
        sign,
        config,
        forms_matrix=solver.forms_matrix,
        factorizes=solver.factorizes,
        allow_singular=solver.minimum_norm,
        direction=direction,
        whole_kkt=not solver.reduces_kkt,
        residual=residual,
    )


def by_factorization(system, sign, config, solver):
    """Certify a definite system (``sign != 0``, symmetric, no constraints) by the Cholesky
    factorisation its solver computes anyway: success proves definiteness (a failure is
    explained by :func:`certify`, or reported as not definite), and the condition is judged
    on ``D A D`` (:func:`equilibrated`). Returns ``None`` when the solver has no such
    factorisation for this system (then :func:`certify` decides).

    * :class:`~argminlib.Dense` with ``Certify(method="auto")``, for an assembled matrix (a
      user's ``hess``) or ``n >= CHOLESKY_CERTIFICATE_N``: the condition from LAPACK's
      1-norm estimate ``pocon`` on the factor of ``A`` and on the factor ``D L`` of
      ``D A D``, which bound the 2-norm condition from above up to the estimator's
      accuracy.
    * :class:`~argminlib.Sparse`: the smallest eigenvalue of ``D A D`` by two steps of
      inverse iteration from the random probe on the factor (each step multiplies a tiny
      eigenvalue's component by its inverse), the largest by Gershgorin's theorem."""
    if not (sign and system.symmetric and not system.kkt_rows) or system.n == 0:
        return None
    if isinstance(solver, Dense):
        return _by_dense_cholesky(system, sign, config, solver)
    if isinstance(solver, Sparse):
        return _by_sparse_cholesky(system, sign, config, solver)
    return None


def _not_definite(system, sign, config, err, explain):
    """A failed Cholesky factorisation: explained by the eigenvalue certificate when it can
    name them (``explain``), else reported as not definite."""
    explain()
    raise CurvatureError(
        f"{err} So y is not a strict local {'minimum' if sign > 0 else 'maximum'}: the "
        f"{system.name} is not {'positive' if sign > 0 else 'negative'} definite."
    ) from None


def _by_dense_cholesky(system, sign, config, solver):
    if (
        config.method != "auto"
        or solver._method(system) != "cholesky"
        or (system.assembled() is None and system.n < CHOLESKY_CERTIFICATE_N)
    ):
        return None
    try:
        _, (c, lower) = solver.factor(system)
    except LinearSolveError as err:
        _not_definite(
            system,
            sign,
            config,
            err,
            lambda: certify(system, sign, config, forms_matrix=True, factorizes=True),
        )
    A = system.matrix()
    anorm = float(onp.max(onp.sum(onp.abs(A), axis=0)))
    uplo = "L" if lower else "U"
    rcond, _ = sla.lapack.dpocon(c, anorm, uplo=uplo)
    lo, hi = float(rcond) * anorm, anorm
    d = 1.0 / onp.sqrt(onp.abs(onp.diagonal(A)))  # (> 0: A is definite)
    snorm = float(onp.max(onp.sum(onp.abs(d[:, None] * A * d), axis=0)))
    cs = d[:, None] * c if lower else c * d  # the factor of D A D = (D L)(D L)^T
    srcond, _ = sla.lapack.dpocon(cs, snorm, uplo=uplo)
    return _judged_factor_certificate(
        system, sign, config, "cholesky", lo, hi, srcond * snorm, snorm
    )


def _by_sparse_cholesky(system, sign, config, solver):
    try:
        fac = solver.factor(system)
    except LinearSolveError as err:
        lanczos_config = replace(config, method="lanczos")
        _not_definite(system, sign, config, err, lambda: certify(system, sign, lanczos_config))
    if fac.definite != sign:
        return None
    A = solver._matrix(system)
    # S = D A D has the inverse D^-1 A^-1 D^-1: the probe w = A^{-1} b gives
    # S^{-1} (D b) = D^-1 w, and one more solve a second step of inverse iteration
    diag = onp.abs(system.diagonal())  # (> 0: A is definite)
    dinv = onp.sqrt(diag)
    _, w = probe(solver, system)
    v = dinv * w
    v = v / float(onp.max(onp.abs(v)))  # (normalised: f x 1e300 underflows S^{-2} b)
    v2 = dinv * fac.solve(dinv * v)
    c = float(onp.max(onp.abs(v2)))
    u = v2 / c
    slo = abs(float(u @ v)) / float(u @ u) / c  # v^T S^-1 v / v^T S^-2 v
    absA = sp.csr_matrix((onp.abs(A.data), A.indices, A.indptr), shape=A.shape)
    hi = float(onp.max(absA @ onp.ones(system.n)))  # Gershgorin, of A and of S
    shi = float(onp.max((absA @ (1.0 / dinv)) / dinv))
    lo = slo * float(onp.min(diag))  # lam_min(A) >= lam_min(S) min(a_ii)
    return _judged_factor_certificate(
        system, sign, config, f"cholesky-{fac.method}", lo, hi, slo, shi
    )


def _judged_factor_certificate(system, sign, config, method, lo, hi, slo, shi):
    """The certificate of ``sign * A`` with eigenvalues in ``[lo, hi]`` (of ``D A D``:
    ``[slo, shi]``), judged (:func:`_judge`)."""
    low, high = (lo, hi) if sign > 0 else (-hi, -lo)
    slow, shigh = (slo, shi) if sign > 0 else (-shi, -slo)
    cert = Certificate(
        method, low, high, lo, False, 0, system.n, scaled=(float(slow), float(shigh), float(slo))
    )
    _judge(system, sign, cert, config, False)
    return cert
