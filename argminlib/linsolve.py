"""Linear solvers: ``A w = b`` for a square operator known by its products.

Implicit differentiation needs one linear system per derivative, with ``A`` the Jacobian of
the optimality conditions (the Hessian ``f_YY`` unconstrained, the KKT matrix with
constraints). This module knows nothing of argmins: a :class:`LinearSystem` is a square
operator with a few declared properties (symmetric, expected sign, KKT block size), and a
solver is any callable ``solver(system, b) -> (w, SolveInfo)`` that reports how the solve
went. Solvers work on plain numpy values; ``argminlib.implicit`` makes every one of them
differentiable (any order) by the implicit function theorem applied to ``A w - b = 0``.

* :class:`Dense` forms ``A`` once from ``n`` products and factorises it once (Cholesky, LU
  or a pseudo-inverse); the factor serves every later right-hand side and the transposed
  system.
* :class:`CG` (our own, so that its Lanczos coefficients give Ritz values and its
  curvature ``p^T A p`` is seen), :class:`MINRES` and :class:`GMRES` (scipy's) never form
  ``A``.
* :class:`NullSpace` solves a KKT system by CG on the reduced Hessian.
* :class:`Sparse` factorises an assembled sparse ``A`` once (:func:`argminlib.sparse.factorize`:
  tridiagonal or banded Cholesky/LU, CHOLMOD, ``splu``) and serves every right-hand side
  from the factor.
* a plain function ``solve(matvec, b) -> w`` is accepted too (see :func:`get_solver`).

A solver declares what it can do with class attributes: ``forms_matrix`` (it builds the
dense ``A``, so an exact eigenvalue certificate is free), ``factorizes`` (it factorises
``A`` once per system, so more right-hand sides cost back-substitutions only),
``needs_definite`` (CG),
``accepts_kkt`` (can solve an indefinite KKT system) and ``minimum_norm`` (returns the
minimum-norm solution of a singular system instead of failing).
"""

from __future__ import annotations

import copy
import numbers
import warnings
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as onp
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from autograd.tracer import getval

from . import sparse as _sparse
from .exceptions import ArgminError, InputError, LinearSolveError, NonFiniteError, ShapeError
from .randomness import generator, random_vector

__all__ = [
    "backward_error",
    "Curvature",
    "SolveInfo",
    "LinearSystem",
    "LinearSolver",
    "Dense",
    "CG",
    "MINRES",
    "GMRES",
    "NullSpace",
    "Sparse",
    "get_solver",
]


@dataclass(frozen=True)
class SolveInfo:
    """Outcome of one (or several, merged) linear solves.

    ``method``: solver name; ``iterations``: Krylov iterations (0 for a dense solve);
    ``residual``: relative residual ``||A w - b|| / ||b||`` (largest over merged solves);
    ``converged``: whether the residual met the solver's tolerance; ``solves``: number of
    right-hand sides; ``ritz``: ``(lowest, highest)`` Ritz values of ``A`` from CG's own
    Lanczos coefficients (unpreconditioned CG only), else ``None``; ``certificate``: the
    :class:`argminlib.Certificate` of the second-order conditions at the solution, attached
    by the problem (``None`` when certification was switched off); ``error``: for a
    Krylov solve of a certified system, a bound on the relative error of ``w``:
    ``||A w - b|| / (lam ||w||)`` with ``lam`` the certificate's lower bound on the
    smallest curvature (for a KKT matrix, through the null space of the constraints; the
    largest over merged solves), else ``None``.
    """

    method: str
    iterations: int
    residual: float
    converged: bool
    solves: int = 1
    ritz: tuple | None = None
    certificate: object = None
    error: float | None = None

    def merge(self, other: SolveInfo) -> SolveInfo:
        """Combine the outcomes of two solves with the same solver."""
        ritz = self.ritz or other.ritz
        if self.ritz and other.ritz:
            ritz = (min(self.ritz[0], other.ritz[0]), max(self.ritz[1], other.ritz[1]))
        errors = [e for e in (self.error, other.error) if e is not None]
        return SolveInfo(
            self.method,
            self.iterations + other.iterations,
            max(self.residual, other.residual),
            self.converged and other.converged,
            self.solves + other.solves,
            ritz,
            self.certificate or other.certificate,
            max(errors) if errors else None,
        )

    def with_certificate(self, certificate) -> SolveInfo:
        return replace(self, certificate=certificate)


class Curvature(NamedTuple):
    """What a certificate hands on to the solves at its solution: ``lam > 0``, a lower
    bound on every eigenvalue of ``sign * A`` (of the reduced Hessian for a KKT matrix),
    ``condition``, the condition number of ``A``, and ``limit``, the largest condition whose
    rounding a solve may claim (``1 / Certify.rcond``: what the user accepts knowingly)."""

    lam: float
    condition: float
    limit: float = onp.inf


class LinearSystem:
    """A square operator ``A`` (``n x n``) known by its products.

    Parameters
    ----------
    n : int
        Size of the (flat) system.
    matvec : callable
        ``v -> A v`` on 1-D float arrays of length ``n``.
    rmatvec : callable, optional
        ``v -> A^T v`` on 1-D float arrays of length ``n`` (may be omitted if
        ``symmetric``).
    symmetric : bool
        Whether ``A`` is symmetric (then ``rmatvec`` may be omitted).
    sign : {+1, -1, 0}
        ``+1`` if ``A`` is expected positive definite, ``-1`` negative definite, ``0`` if
        nothing is known (a tag, as in lineax: the solver may rely on it, e.g. CG).
    kkt_rows : int
        For a KKT matrix ``[[H, J^T], [J, 0]]``: the number ``p`` of constraint rows (the
        last ``p`` unknowns are multipliers). ``sign`` then refers to ``H`` on the null
        space of ``J``.
    name : str
        What ``A`` is, for messages ("Hessian f_YY", "KKT matrix", ...).
    assembled : callable, optional
        ``() -> A`` as a dense array or a ``scipy.sparse`` matrix, when ``A`` is known as a
        matrix (a user's Hessian, or one recovered from a sparsity pattern): called at most
        once, when a solver asks for the matrix, its diagonal or its sparse form.
    """

    def __init__(
        self,
        n,
        matvec,
        rmatvec=None,
        *,
        symmetric=False,
        sign=0,
        kkt_rows=0,
        name="matrix",
        assembled=None,
    ):
        self.n = int(n)
        self.matvec = matvec
        self.rmatvec = matvec if (rmatvec is None and symmetric) else rmatvec
        self.symmetric = bool(symmetric)
        self.sign = int(sign)
        self.kkt_rows = int(kkt_rows)
        self.name = name
        self.transposed = False
        self.cache = {}  # shared with the transposed view: factorisations, the dense matrix
        self._state = {}  # what a certificate handed on (shared with the transposed view)
        if assembled is not None:
            self.cache["assembled-by"] = assembled

    def certify_curvature(self, lam, condition, limit=onp.inf):
        """Hand on what a certificate established: every eigenvalue of ``sign * A`` (for a
        KKT matrix: of its Hessian block on the null space of the constraints' Jacobian,
        the reduced Hessian) is at least ``lam > 0``, and the condition a solve meets is
        ``condition`` (its rounding claimed up to ``limit``); read back as
        :attr:`curvature` (a :class:`.Curvature`, shared with
        the transposed view). Krylov solves then bound the error of their answers (see
        :class:`CG`); for a KKT matrix, those of :class:`NullSpace`'s inner solver."""
        if lam > 0 and onp.isfinite(lam) and self.sign:
            self._state["curvature"] = Curvature(float(lam), float(condition), float(limit))

    @property
    def curvature(self):
        """The :class:`.Curvature` handed on by :meth:`certify_curvature`, or ``None``."""
        return self._state.get("curvature")

    def certified_curvature(self):
        """:attr:`curvature` for a system without KKT rows, else ``None``."""
        return None if self.kkt_rows else self.curvature

    @property
    def T(self) -> LinearSystem:
        """The transposed system (the adjoint system of reverse mode); shares the cache."""
        if self.symmetric:
            return self
        if self.rmatvec is None:
            raise InputError(f"the {self.name} has no transpose product")
        t = LinearSystem(self.n, self.rmatvec, self.matvec, sign=self.sign, name=self.name)
        t.kkt_rows, t.transposed, t.cache = self.kkt_rows, not self.transposed, self.cache
        t._state = self._state
        return t

    def assembled(self):
        """``A`` as given by ``assembled`` (dense array or scipy.sparse, untransposed), or
        ``None`` when ``A`` is known by its products only."""
        if "assembled" not in self.cache:
            make = self.cache.get("assembled-by")
            A = None if make is None else make()
            if A is not None and not onp.all(onp.isfinite(A.data if sp.issparse(A) else A)):
                raise NonFiniteError(f"The {self.name} contains NaN or inf.")
            self.cache["assembled"] = A
        return self.cache["assembled"]

    def sparse(self):
        """``A`` as a scipy.sparse CSR matrix (transposed for the transposed view), or
        ``None`` when it is not assembled."""
        A = self.assembled()
        if A is None:
            return None
        A = sp.csr_matrix(A) if not sp.isspmatrix_csr(A) else A
        return A.T.tocsr() if self.transposed else A

    def diagonal(self):
        """The exact diagonal of ``A`` when it is assembled, else ``None``."""
        A = self.assembled()
        return None if A is None else _sparse.diagonal(A)

    def matrix(self):
        """The dense ``A`` (numpy), formed once from ``n`` products (or from the assembled
        matrix) and cached."""
        if "matrix" not in self.cache and self.assembled() is not None:
            A = self.assembled()
            self.cache["matrix"] = onp.asarray(A.toarray() if sp.issparse(A) else A, dtype=float)
        if "matrix" not in self.cache:
            base = self if not self.transposed else self.T
            eye = onp.eye(self.n)
            if self.n == 0:
                M = onp.zeros((0, 0))
            elif base.rmatvec is not None:  # A^T e_i is row i of A
                M = onp.stack([_as_vector(base.rmatvec(eye[i]), self.n) for i in range(self.n)])
            else:
                M = onp.stack([_as_vector(base.matvec(eye[i]), self.n) for i in range(self.n)]).T
            if not onp.all(onp.isfinite(M)):
                raise NonFiniteError(
                    f"The {self.name} contains NaN or inf; check f and its derivatives at y."
                )
            self.cache["matrix"] = M
        M = self.cache["matrix"]
        return M.T if self.transposed else M

    def kkt_jacobian(self):
        """For a KKT system (``kkt_rows = p``): the constraint Jacobian ``J`` (``p x n``), read
        off ``p`` products with ``[0; e_i]`` once and cached (shared by the certificate, the
        null-space solver and the Krylov solvers' balancing)."""
        if "kkt-J" not in self.cache:
            p = self.kkt_rows
            n = self.n - p
            rows = [self.apply(onp.concatenate([onp.zeros(n), e]))[:n] for e in onp.eye(p)]
            self.cache["kkt-J"] = onp.stack(rows) if p else onp.zeros((0, n))
        return self.cache["kkt-J"]

    def apply(self, v):
        """``A v`` as a float array, checked finite."""
        return _as_vector(self.matvec(v), self.n)


def _as_vector(v, n):
    v = onp.asarray(getval(v), dtype=float).reshape(-1)
    if v.shape != (n,):
        raise ShapeError(f"a matrix-vector product returned {v.size} values, expected {n}")
    return v


def _check_rhs(system, b):
    b = onp.asarray(getval(b))
    if onp.iscomplexobj(b):
        raise InputError("complex right-hand sides are not supported")
    b = b.astype(float, copy=False)
    if b.ndim not in (1, 2) or b.shape[0] != system.n:
        raise ShapeError(f"right-hand side of shape {b.shape} for a system of size {system.n}")
    if not onp.all(onp.isfinite(b)):
        raise NonFiniteError(
            "The right-hand side of the linear solve contains NaN or inf (a NaN cotangent "
            "or derivative of f)."
        )
    return b


def backward_error(A, w, b, r=None):
    """The componentwise relative backward error of ``w`` as a solution of ``A w = b``
    (Oettli and Prager 1964): the least ``eta`` such that ``(A + dA) w = b + db`` with
    ``|dA| <= eta |A|`` and ``|db| <= eta |b|`` entrywise, ``max_i |r_i| / (|A| |w| +
    |b|)_i`` (largest over the columns of ``w``). Unlike the normwise residual it does not
    change when the rows or the variables are rescaled, so it judges a factorised solve
    of a badly scaled matrix by what the factorisation did, not by the units: a backward
    stable solve has ``eta`` of a few ``eps`` whatever the scaling (the error that remains
    is the condition's, which the certificate judges). Below the underflow threshold
    rounding is absolute, not relative (each operation errs by up to the subnormal
    spacing, Higham 2.1), so ``|r_i|`` is first reduced by ``safe = (k + 1) * tiny``, ``k``
    the most nonzeros of a row: an answer that decays into subnormal numbers (the
    solution of a chain for one unit cotangent) is not called unstable for them."""
    r = A @ w - b if r is None else r
    absA = abs(A) if sp.issparse(A) else onp.abs(A)
    scale = absA @ onp.abs(w) + onp.abs(b)
    if sp.issparse(A):
        k = int(onp.max(onp.diff(sp.csr_matrix(A).indptr), initial=0))
    else:
        k = A.shape[1] if A.ndim == 2 else 1
    safe = (k + 1) * onp.finfo(float).tiny
    num = onp.maximum(onp.abs(r) - safe, 0.0)
    ratio = onp.where(
        scale > 0, num / onp.where(scale > 0, scale, 1.0), onp.where(num > 0, onp.inf, 0.0)
    )
    return float(onp.max(ratio)) if ratio.size else 0.0


def _relative_residual(r, b):
    nb = float(onp.linalg.norm(b))
    nr = float(onp.linalg.norm(r))
    return nr / nb if nb > 0 else nr


class LinearSolver:
    """Base of the solvers: validates ``b`` and splits several right-hand sides."""

    name = "solver"
    forms_matrix = False
    factorizes = False
    needs_definite = False
    accepts_kkt = True
    minimum_norm = False
    #: solves a KKT system on the null space of its constraints (NullSpace), not whole
    reduces_kkt = False

    def loosened(self, rtol, primal_atol=0.0):
        """This solver with relative tolerance at least ``rtol`` (for solves that need a
        few digits only, such as the Newton step of the acceptance test, whose primal
        part's error may be ``primal_atol`` in absolute terms). Direct solvers are exact
        and return themselves."""
        return self

    def scaled(self, s):
        """This solver for the right-hand side divided by ``s`` (a power of two): a solver
        with an absolute tolerance returns a copy with the tolerance divided by ``s``."""
        return self

    def validate(self, system):
        """Raise now (at the solution, before any solve) if this solver cannot serve
        ``system``: a solve may come only later, when a derivative is asked for."""

    def __call__(self, system, b):
        b = _check_rhs(system, b)
        if not self.accepts_kkt and system.kkt_rows:
            raise InputError(
                f"solver {self.name!r} needs a definite matrix and the {system.name} is "
                "indefinite by construction; use solver='dense', 'minres', 'gmres' or "
                "'nullspace'."
            )
        if system.n == 0:
            return onp.zeros(b.shape), SolveInfo(self.name, 0, 0.0, True)
        if b.ndim == 2 and type(self)._solve_many is LinearSolver._solve_many:
            return self._solve_many(system, b)  # column by column, each scaled below
        # solve for b / s and scale back, s the power of two with max |b / s| in [1, 2) (per
        # column): exact in floating point, and the solvers' norms can neither overflow (a
        # cotangent of 1e300) nor underflow (1e-300, whose norm is 0 in floating point);
        # an absolute tolerance is scaled with b (:meth:`scaled`)
        big = onp.max(onp.abs(b), axis=0)
        s = onp.ldexp(1.0, onp.frexp(onp.where(big > 0, big, 1.0))[1] - 1)
        if b.ndim == 2:
            w, info = self._solve_many(system, b / s)
        else:
            try:
                w, info = self.scaled(float(s))._solve(system, b / s)
            except LinearSolveError as err:  # its last iterate, if any, for b itself
                if getattr(err, "solution", None) is not None:
                    err.solution = err.solution * s
                raise
        w = w * s
        if not onp.all(onp.isfinite(w)):
            raise NonFiniteError(
                f"The solution of the {system.name} system overflows (inf): the derivative "
                "is too large for floating point; rescale the problem or the cotangent."
            )
        return w, info

    def _solve_many(self, system, B):
        cols, info = [], None
        for j in range(B.shape[1]):
            w, i = self(system, B[:, j])
            cols.append(w)
            info = i if info is None else info.merge(i)
        if info is None:
            info = SolveInfo(self.name, 0, 0.0, True, 0)
        return onp.stack(cols, axis=1) if cols else onp.zeros((system.n, 0)), info


def probe(solver, system):
    """``(b, A^{-1} b)`` for a random ``b`` (:mod:`argminlib.randomness`), solved once per
    system (cached): one step of inverse iteration for a factorisation's certificate, and
    the residual check of a user's Hessian."""
    if "probe" not in system.cache:
        b = random_vector(system.n, 0)
        system.cache["probe"] = (b, solver(system, b)[0])
    return system.cache["probe"]


class Dense(LinearSolver):
    """Dense solve: form ``A`` once, factorise it once, serve every right-hand side.

    Parameters
    ----------
    method : {"auto", "cholesky", "lu", "lstsq"}
        ``auto`` uses Cholesky when the system is tagged definite (``sign != 0``, no KKT
        rows) and LU otherwise. ``lstsq`` returns the minimum-norm solution (through the
        pseudo-inverse with cutoff ``rcond``): the certificate then accepts a singular,
        semidefinite Hessian, whose derivative is the minimum-norm one.
    rcond : float or None
        Relative cutoff of the pseudo-inverse (``lstsq``). ``None``: round-off level,
        ``max(100, n) * eps``, the same level below which the certificate calls an
        eigenvalue zero (an ill-conditioned but invertible matrix is then refused, not
        silently truncated).
    """

    name = "dense"
    forms_matrix = True
    factorizes = True

    def __init__(self, method="auto", rcond=None):
        if method not in ("auto", "cholesky", "lu", "lstsq"):
            raise InputError(f"Dense(method={method!r}): use 'auto', 'cholesky', 'lu' or 'lstsq'")
        if rcond is not None and not (
            isinstance(rcond, numbers.Real) and not isinstance(rcond, bool) and 0 <= rcond < 1
        ):
            raise InputError(f"Dense(rcond={rcond!r}): use None or a number in [0, 1)")
        self.method = method
        self.rcond = None if rcond is None else float(rcond)
        self.minimum_norm = method == "lstsq"

    def _method(self, system):
        if self.method == "auto":
            return (
                "cholesky" if (system.symmetric and system.sign and not system.kkt_rows) else "lu"
            )
        if self.method == "cholesky" and (not system.sign or system.kkt_rows):
            raise InputError(
                f"solver='cholesky' needs a definite system; the {system.name} is not "
                "(a KKT matrix, or mode='stationary'). Use solver='dense' or 'lu'."
            )
        return self.method

    def factor(self, system):
        """The factorisation of ``A`` (cached on the system, shared with ``system.T``)."""
        method = self._method(system)
        key = ("dense", method, self.rcond)
        if key not in system.cache:
            A = system.matrix()
            A = A.T if system.transposed else A  # factorise the untransposed matrix
            with warnings.catch_warnings():
                warnings.simplefilter("error", sla.LinAlgWarning)
                try:
                    # LAPACK factorises a Fortran-ordered copy in place: the transpose of
                    # a fresh C-ordered copy (given a C-ordered array, scipy transposes it
                    # into a second copy: 3x the factorisation's time at n = 400). A is
                    # finite: checked where it is formed or returned by the user.
                    if method == "cholesky":  # (A symmetric: the transpose is A)
                        own = system.sign * A
                        fac = sla.cho_factor(
                            own.T, lower=True, overwrite_a=True, check_finite=False
                        )
                    elif method == "lu":  # the factors of A^T (solves transpose back)
                        own = onp.array(A, dtype=float, order="C")
                        fac = sla.lu_factor(own.T, overwrite_a=True, check_finite=False)
                    else:
                        rcond = self.rcond
                        if rcond is None:
                            rcond = max(100, A.shape[0]) * onp.finfo(float).eps
                        # a KKT matrix balanced first (D A D), or the pseudo-inverse's
                        # cut-off, relative to the larger block, drops the smaller one
                        d = _kkt_scaling(system)
                        fac = d[:, None] * onp.linalg.pinv(d[:, None] * A * d, rcond=rcond) * d
                except (onp.linalg.LinAlgError, sla.LinAlgWarning, ValueError) as err:
                    raise LinearSolveError(
                        f"The dense {method} factorisation of the {system.name} failed "
                        f"({err}): the matrix is singular or not definite."
                    ) from None
            system.cache[key] = fac
        return method, system.cache[key]

    def _solve(self, system, b):
        method, fac = self.factor(system)
        # (b and the factors are finite: checked by _check_rhs and where A is formed)
        if method == "cholesky":
            w = system.sign * sla.cho_solve(fac, b, check_finite=False)
        elif method == "lu":
            w = sla.lu_solve(fac, b, trans=0 if system.transposed else 1, check_finite=False)
        else:
            w = (fac.T if system.transposed else fac) @ b
        if not onp.all(onp.isfinite(w)):
            raise LinearSolveError(f"The dense solve with the {system.name} produced NaN or inf.")
        A = system.matrix()
        return w, SolveInfo(f"dense-{method}", 0, _relative_residual(A @ w - b, b), True, 1)

    def _solve_many(self, system, B):
        if B.shape[1] == 0:
            return onp.zeros((system.n, 0)), SolveInfo(self.name, 0, 0.0, True, 0)
        w, info = self._solve(system, B)
        return w, replace(info, solves=B.shape[1])


PRECONDITIONERS = ("auto", "jacobi", "ilu")


def _named_preconditioner(name, system):
    """``"auto"``: Jacobi when the diagonal of ``A`` is known exactly (an assembled matrix),
    none otherwise; ``"jacobi"``: from the exact diagonal, or else an estimate from
    ``JACOBI_PROBES`` products with random signs (``d ~ mean(v * A v)``); ``"ilu"``: an
    incomplete LU of the assembled sparse matrix. Built once per system (cached)."""
    key = ("preconditioner", name, system.transposed and name == "ilu")
    if key not in system.cache:
        d = system.diagonal()
        if name == "auto":
            M = None if d is None else _sparse.jacobi_preconditioner(d)
        elif name == "jacobi":
            if d is None:
                rng = generator(None, 4)
                V = rng.choice([-1.0, 1.0], size=(JACOBI_PROBES, system.n))
                d = onp.mean([v * system.apply(v) for v in V], axis=0)
            M = _sparse.jacobi_preconditioner(d)
        else:
            A = system.sparse()
            if A is None:
                raise InputError(
                    "preconditioner='ilu' needs the matrix: pass hess= (an array or sparse "
                    "matrix) or hess_sparsity=, or use preconditioner='jacobi'."
                )
            M = _sparse.ilu_preconditioner(A)
        system.cache[key] = M
    return system.cache[key]


#: products spent on estimating the diagonal for preconditioner="jacobi" (no assembled matrix)
JACOBI_PROBES = 8


def _preconditioner(M, n, system=None):
    """``M`` (approximating ``A^{-1}``) as a function ``v -> M v``, shape-checked; a name
    (``"auto"``, ``"jacobi"``, ``"ilu"``) is built from ``system``."""
    if M is None:
        return None
    if isinstance(M, str):
        return _named_preconditioner(M, system)
    if hasattr(M, "shape") and not callable(getattr(M, "matvec", None)):
        if tuple(M.shape) != (n, n):
            raise ShapeError(
                f"the preconditioner has shape {tuple(M.shape)}; the system is {n}x{n}"
            )
        return lambda v: onp.asarray(M @ v, dtype=float).reshape(-1)
    if callable(getattr(M, "matvec", None)):
        if tuple(M.shape) != (n, n):
            raise ShapeError(
                f"the preconditioner has shape {tuple(M.shape)}; the system is {n}x{n}"
            )
        return lambda v: onp.asarray(M.matvec(v), dtype=float).reshape(-1)
    if callable(M):

        def apply(v):
            out = onp.asarray(M(v))
            if out.size != n:
                raise ShapeError(f"the preconditioner returned {out.size} values for {n}")
            return out.astype(float).reshape(-1)

        return apply
    raise InputError(
        "preconditioner must be a callable v -> M v, an n x n matrix or a LinearOperator"
    )


class _Krylov(LinearSolver):
    """Shared driver of the matrix-free solvers (subclasses set ``name`` and ``_run``).

    The solve is accepted when the true residual ``||A w - b||`` is at most
    ``10 * max(rtol ||b||, min(atol, 1e-3 ||b||))``: ``atol`` is capped at a thousandth of
    ``||b||`` so that a loose absolute tolerance can never accept ``w = 0``. If scipy stops
    early on its own residual estimate, the solve restarts from its answer with a tighter
    internal tolerance (at most three times).

    A small residual does not make an accurate ``w``: ``w`` errs by ``A^{-1} r``, up to
    ``||r|| / lam`` with ``lam`` the smallest curvature, so at condition ``1e8`` a residual
    of ``1e-4 ||b||`` can leave ``w`` wholly wrong. For a definite system certified at
    the solution (:meth:`~argminlib.LinearSystem.certified_curvature`), the solve is
    therefore judged by the bound ``e = ||r|| / (lam ||w||)`` on its relative error: it
    is accepted when ``e <= max(accuracy, 10 eps cond)``, where ``accuracy`` is
    ``max(1e-6, 10 rtol)`` (relative to the accepted residual, ``atol`` included) and
    ``10 eps cond`` is what rounding allows at the certified condition; a residual
    below the tolerance with a larger bound is tightened until the bound holds, and a
    solve whose bound cannot be brought below it raises
    :class:`~argminlib.LinearSolveError`. The bound is in
    ``SolveInfo.error``. For a KKT matrix it applies to :class:`NullSpace`'s inner solves
    (the certificate bounds the reduced Hessian), and MINRES or GMRES on the whole KKT
    matrix bound their error through the null-space decomposition instead (see
    ``_kkt_error_bound``), with the allowance's condition the larger of the reduced
    Hessian's and the square of the constraints' (rows normalised).
    """

    #: the relative error of a solve certified by default: ``max(ACCURACY, 10 rtol)``
    ACCURACY = 1e-6
    #: rounding's share: ``ROUNDING * eps * condition`` is always allowed
    ROUNDING = 10.0
    #: the relative error allowed for this solver's solves (``None``: ``ACCURACY`` or
    #: ``10 rtol``); the Newton step of the acceptance test asks for ``1e-3`` only
    accuracy = None

    def __init__(self, rtol=1e-10, atol=0.0, maxiter=None, preconditioner="auto"):
        cls = type(self).__name__
        if not (isinstance(rtol, numbers.Real) and 0 < rtol < 1):
            raise InputError(f"{cls}(rtol={rtol!r}): rtol must be a number in (0, 1)")
        if not (isinstance(atol, numbers.Real) and 0 <= atol < onp.inf):
            raise InputError(f"{cls}(atol={atol!r}): atol must be a finite number >= 0")
        if maxiter is not None and not (
            isinstance(maxiter, numbers.Integral) and not isinstance(maxiter, bool) and maxiter >= 1
        ):
            raise InputError(f"{cls}(maxiter={maxiter!r}): maxiter must be None or an integer >= 1")
        if isinstance(preconditioner, str) and preconditioner not in PRECONDITIONERS:
            raise InputError(
                f"{cls}(preconditioner={preconditioner!r}): use one of {PRECONDITIONERS}, "
                "None, a callable v -> M v, an n x n matrix or a LinearOperator"
            )
        if preconditioner is not None and not (
            isinstance(preconditioner, str)
            or callable(preconditioner)
            or hasattr(preconditioner, "shape")
        ):
            raise InputError(
                f"{cls}: preconditioner must be a callable v -> M v, an n x n matrix or a "
                "LinearOperator"
            )
        self.rtol, self.atol, self.maxiter = float(rtol), float(atol), maxiter
        self.preconditioner = preconditioner

    def validate(self, system):
        M = self.preconditioner
        if isinstance(M, str) and M == "ilu" and system.assembled() is None:
            _named_preconditioner(M, system)  # raises: no matrix to factorise
        elif M is not None and not isinstance(M, str):
            apply = _preconditioner(M, system.n, system)  # shape checks
            if callable(M) and not hasattr(M, "shape") and system.n:
                # a function: one call (on a residual-like random vector) checks its size
                apply(random_vector(system.n, 0).copy())  # (its own: M may write)

    #: with ``accuracy`` (a Newton step): the primal part's error may be this large in
    #: absolute terms (below what the acceptance test can see), whatever its own size
    primal_atol = 0.0

    def scaled(self, s):
        if (self.atol == 0.0 and self.primal_atol == 0.0) or s == 1.0:
            return self
        solver = copy.copy(self)
        solver.atol = self.atol / s
        solver.primal_atol = self.primal_atol / s
        return solver

    def loosened(self, rtol, primal_atol=0.0):
        solver = copy.copy(self)
        solver.rtol = max(self.rtol, float(rtol))
        solver.accuracy = 1e-3  # a few correct digits (the Newton step of the acceptance)
        solver.primal_atol = float(primal_atol)
        return solver

    def _allowed_error(self, relative_target, condition, limit):
        """The relative error a solve must be certified below (see the class), with the
        rounding of a ``condition`` claimed up to ``limit`` (a derivative that rounding
        leaves with an error above ``10 eps / rcond`` is not accepted unknowingly)."""
        accuracy = self.accuracy
        if accuracy is None:
            accuracy = max(self.ACCURACY, 10 * relative_target)
        return max(accuracy, self.ROUNDING * onp.finfo(float).eps * min(condition, limit))

    def _certified_error(self, system, b, nb):
        """``(error_of, curvature, allowed)``: the one error bound of a certified system's
        solve, ``error_of(w, res)`` for an iterate ``w`` whose (run's) residual norm is
        ``res``, the :class:`Curvature` it is judged by, and the relative error
        allowed (:meth:`_allowed_error`); ``(None, None, None)`` without a certificate.
        Plain: ``res / (lam ||w||)``; KKT: through the null-space decomposition
        (:func:`_kkt_error_bound`), with the condition the larger of the reduced
        Hessian's and the square of the constraints' (rows normalised)."""
        c = system.curvature
        if c is None:
            return None, None, None
        relative = max(self.rtol, min(self.atol, 1e-3 * nb) / nb)
        if not system.kkt_rows:
            allowed = self._allowed_error(relative, c.condition, c.limit)
            return (lambda w, res: _error_bound(res, w, c.lam)), c, allowed
        sv = constraint_svd(system)[1]
        condition = max(c.condition, (float(sv[0]) / float(sv[-1])) ** 2)
        primal_only, primal_atol = self.accuracy is not None, self.primal_atol

        def error_of(w, res):
            return _kkt_error_bound(system, w, b, primal_only=primal_only, primal_atol=primal_atol)

        return (
            error_of,
            c._replace(condition=condition),
            self._allowed_error(relative, condition, c.limit),
        )

    def _solve(self, system, b):
        """The one solve loop of CG, MINRES and GMRES (see the class): the iteration runs on
        ``A``, or on a KKT matrix balanced ``D A D`` (:func:`_kkt_balanced`, right-hand
        side ``D b`` normalised by a power of two ``t``); each attempt is judged by the
        certified error bound when there is one (tightened until it is within the
        allowance), else by the residual; a run that stops early on an operator of
        extreme scale is repeated once on ``A / a``."""
        nb = float(onp.linalg.norm(b))
        if nb == 0:
            return onp.zeros_like(b), SolveInfo(self.name, 0, 0.0, True)
        error_of, curvature, allowed = self._certified_error(system, b, nb)
        run, d, t, b_run = _run_system(system, b)
        nbr = float(onp.linalg.norm(b_run))
        if nbr == 0:
            return onp.zeros_like(b), SolveInfo(self.name, 0, 0.0, True)
        target = max(self.rtol * nbr, min(self.atol / t, 1e-3 * nbr))
        M = _preconditioner(self.preconditioner, run.n, run)
        w_run, rtol, iters, ritz, res, code, w = None, self.rtol, 0, None, onp.inf, 0, None
        A_run, run_M, a, rescaled = run, M, 1.0, False
        error, accepted, tightened, previous = None, False, False, onp.inf
        for _ in range(8):
            try:
                # the run solves (A_run / a) w' = b_run, w' = a w_run (a = 1 unless rescaled)
                w_run, code, k, ritz = self._run(
                    A_run, b_run, run_M, None if w_run is None else a * w_run, rtol, target
                )
                w_run = w_run / a if a != 1.0 else w_run
                if ritz is not None and a != 1.0:  # CG's Ritz values are those of A / a
                    ritz = tuple(a * r for r in ritz)
            except ArithmeticError as err:
                raise LinearSolveError(
                    f"{self.name.upper()} failed on the {system.name}: {err}"
                ) from None
            iters += k
            finite = bool(onp.all(onp.isfinite(w_run)))
            w = (w_run if d is None else d * w_run * t) if finite else None
            if finite:
                r = system.apply(w) - b
                res = float(onp.linalg.norm(r if d is None else d * r / t))
            else:
                res = onp.inf
            stalled = code != 0 or res > 0.5 * previous
            previous = res
            if error_of is not None and finite:
                error = error_of(w, res)
                # certified accurate enough: at the residual asked for, or, whatever the
                # residual, once the iteration stalls (it gives no more)
                if error <= allowed and (res <= 10 * target or stalled):
                    accepted = True
                    break
                if res <= 10 * target:  # the residual asked for, not the accuracy: tighten
                    target *= 0.25 * allowed / error if onp.isfinite(error) else 1e-2
                    tightened = True
                    rtol = min(rtol, target / nbr)
                    continue
            elif res <= 10 * target:
                accepted = True
                break
            if not finite:
                w_run = None  # not a start for the rerun below
            if not rescaled:
                rescaled = True
                again = _rescaled(run, b_run, M)
                if again is not None:
                    A_run, run_M, a = again
                    continue
            if not finite:
                raise NonFiniteError(
                    f"{self.name.upper()} produced NaN or inf: the {system.name} products are "
                    "not finite at this point."
                )
            if code != 0:  # scipy gave up (maxiter, breakdown): tightening will not help
                break
            rtol *= 1e-2
        info = SolveInfo(self.name, iters, res / nbr, accepted, 1, ritz, error=error)
        if accepted:
            return w, info
        raise self._failure(system, info, code, w, 10 * target / nbr, tightened, curvature, allowed)

    def _failure(self, system, info, code, w, wanted, tightened, curvature, allowed):
        """The :class:`LinearSolveError` of a solve not accepted: its certified error bound
        stayed above the allowance (``tightened``), or its residual above ``wanted``
        (carrying the last iterate ``w``)."""
        name, res = self.name.upper(), info.residual
        if tightened:
            through = (
                " (through the null space of the constraints, with the reduced Hessian's)"
                if system.kkt_rows
                else ""
            )
            return LinearSolveError(
                f"{name} stopped at relative residual {res:.1e} on the {system.name} system "
                f"({info.iterations} iterations, code {code}); its certified curvature{through} "
                f"(condition {curvature.condition:.1e}{_beyond(curvature)}) bounds the "
                f"relative error of the solution only by {info.error:.1e} > {allowed:.0e}, so "
                "the derivative cannot be certified (a residual within rtol is not enough at "
                "this condition). Raise maxiter, "
                "pass a preconditioner, or use solver='dense' (or 'sparse' with "
                "hess_sparsity=; with constraints, 'nullspace').",
                info=info,
            )
        return _with_solution(
            w,
            f"{name} did not converge on the {system.name} system: {info.iterations} "
            f"iterations, relative residual {res:.3e} > {wanted:.1e} (code {code}). Raise "
            "maxiter, pass a preconditioner, or use solver='dense'"
            + (" (CG needs a definite matrix: try 'minres')." if self.name == "cg" else "."),
            info=info,
        )


def _run_system(system, b):
    """``(run, d, t, b_run)``: the system a Krylov iteration runs on, ``A`` itself
    (``d = None``) or a KKT matrix balanced ``D A D`` (:func:`_kkt_balanced`), and its
    right-hand side ``D b / t``, normalised by the power of two ``t`` (its scale may be
    extreme); the run's ``w'`` is ``w = D w' t``."""
    balanced = _kkt_balanced(system)
    if balanced is None:
        return system, None, 1.0, b
    run, d = balanced
    big = float(onp.max(onp.abs(d * b)))
    t = float(onp.ldexp(1.0, onp.frexp(big)[1] - 1)) if big > 0 else 1.0
    return run, d, t, d * b / t


def _rescaled(run, b, M):
    """scipy's MINRES stops early, "converged", on an operator of extreme scale (f x 1e-20,
    f x 1e300): ``(A / a, its preconditioner, a)`` to run again with the same residual, ``a``
    the power of two nearest ``max|A b| / max|b|``, or ``None`` when the scale is moderate."""
    scale = float(onp.max(onp.abs(run.apply(b)))) / float(onp.max(onp.abs(b)))
    if not (onp.isfinite(scale) and scale > 0 and not 1e-8 <= scale <= 1e8):
        return None
    a = float(onp.ldexp(1.0, int(onp.round(onp.log2(scale)))))
    A = LinearSystem(  # (the runs take products with A only)
        run.n, lambda v: run.apply(v) / a, symmetric=run.symmetric, sign=run.sign, name=run.name
    )
    return A, (None if M is None else (lambda v: a * M(v))), a


def _with_solution(w, message, info):
    """A :class:`LinearSolveError` (not converged) carrying the last iterate ``w`` as
    ``solution`` (``None`` if not finite), for a caller that can certify it otherwise."""
    err = LinearSolveError(message, info=info)
    err.solution = w if w is not None and onp.all(onp.isfinite(w)) else None
    return err


def _beyond(curvature):
    """The note of a refusal whose condition is above what the user accepts knowingly."""
    if curvature.condition <= curvature.limit:
        return ""
    return (
        f", above 1/rcond = {curvature.limit:.0e}, the most whose rounding a Krylov solve may "
        "claim; a factorising solve judged it after a diagonal scaling"
    )


def _norm2(v):
    """``||v||`` without overflow or underflow of the squares (entries of 1e200 or 1e-200;
    products of a matrix scaled by 1e160 are finite, their squares are not)."""
    nv = float(onp.linalg.norm(v))
    if 1e-150 < nv < 1e150:
        return nv
    big = float(onp.max(onp.abs(v), initial=0.0))
    if big == 0 or not onp.isfinite(big):
        return big
    return big * float(onp.linalg.norm(v / big))


def _error_bound(res, w, lam):
    """``res / (lam ||w||)``: a bound on the relative error of ``w`` when ``res`` is its
    residual norm and ``lam`` the smallest curvature (``inf`` for ``w = 0``)."""
    nw = _norm2(w)
    if nw == 0:
        return 0.0 if res == 0 else onp.inf
    return res / nw / lam


def normalized_rows(J):
    """``(J / norms, norms)``: each row of ``J`` divided by its 2-norm (computed without
    overflow), a zero row left zero (norm 1): the same row space and null space, with the
    rows of every constraint in the same units."""
    J = onp.asarray(J, dtype=float)
    big = onp.max(onp.abs(J), axis=1, initial=0.0) if J.size else onp.zeros(J.shape[0])
    safe = onp.where(big > 0, big, 1.0)
    norms = safe * onp.linalg.norm(J / safe[:, None], axis=1) if J.size else onp.ones(0)
    norms = onp.where(big > 0, norms, 1.0)
    return J / norms[:, None], norms


def constraint_svd(system):
    """``(U, S, Vt, norms)`` for a KKT system: the thin SVD ``Jn = U diag(S) Vt`` of its
    constraint Jacobian with each row normalised, ``J = diag(norms) Jn`` (computed once,
    cached; shared by the certificate, :class:`NullSpace`, the Krylov error bound and the
    acceptance test). ``Vt`` (``p x n``) spans the row space."""
    if "kkt-svd" not in system.cache:
        Jn, norms = normalized_rows(system.kkt_jacobian())
        U, sv, Vt = onp.linalg.svd(Jn, full_matrices=False)
        system.cache["kkt-svd"] = (U, sv, Vt, norms)
    return system.cache["kkt-svd"]


#: a constraint Jacobian's normalised singular value below this times the largest is zero
RANK_RCOND = 1e-10


def numerical_rank(sv, rcond=RANK_RCOND):
    """The one rank test of argminlib: the number of singular values ``sv`` (descending, of
    the constraint Jacobian with each row normalised, :func:`constraint_svd`) above
    ``rcond`` times the largest. With unit rows the test does not depend on the units of
    any constraint, and a singular value ``sigma`` means two rows within an angle of about
    ``sigma``: below ``rcond`` the multipliers are not determined in floating point."""
    sv = onp.asarray(sv, dtype=float)
    return int(onp.sum(sv > rcond * max(float(sv[0]) if sv.size else 0.0, onp.finfo(float).tiny)))


def null_basis(Vt):
    """An orthonormal basis (columns) of the complement of the orthonormal rows ``Vt``."""
    n = Vt.shape[1]
    if Vt.shape[0] == 0:
        return onp.eye(n)
    return onp.linalg.svd(Vt, full_matrices=True)[2][Vt.shape[0] :].T


def _kkt_error_bound(system, w, b, primal_only=False, primal_atol=0.0):
    """A bound on the relative error of ``w`` for the certified symmetric KKT system
    ``[[H, J^T], [J, 0]] w = b``: that of the whole vector in balanced variables (the
    multipliers divided by the constraint rows' balancing scales, of the Hessian's scale),
    or, if larger, that of the primal part ``w_y`` relative to its own norm (at least
    ``1e-6`` of the whole), so that multipliers in other units cannot hide its error (the
    multipliers' own bound is the looser one, through ``min(S)`` and ``||P H V||``); ``inf``
    when it cannot be computed in floating point. ``primal_only``: the primal part's alone
    (the Newton step of the acceptance test, whose multiplier part may be below the
    floating-point range when the constraints' units are extreme), relative to at least
    ``primal_atol`` (a multiplier-only step has a primal part of rounding size).

    The error ``e`` solves the system with the residual ``(r1, r2)``. With ``J = D Jn``
    (``D``: row norms), ``Jn = U S V^T``, ``P = I - V V^T`` the projection on the null space
    and ``lam`` the certificate's lower bound on the reduced Hessian's curvature:
    ``e_y = J^+ r2 + F z`` with ``||F z|| <= ||P (r1 - H J^+ r2)|| / lam``, and
    ``D e_nu = U S^{-1} V^T (r1 - H e_y)``, of norm at most
    ``(||V^T (r1 - H J^+ r2)|| + ||P H V|| ||F z||) / min(S)``. ``P H V`` (``p`` products)
    is computed once per system. Norms are taken without overflow (``f`` x 1e200)."""
    p = system.kkt_rows
    n = system.n - p
    lam = system.curvature.lam
    U, sv, Vt, norms = constraint_svd(system)
    V = Vt[:p].T
    zero = onp.zeros(p)

    def H(v):
        return system.apply(onp.concatenate([v, zero]))[:n]

    if "kkt-PHV" not in system.cache:
        HV = onp.stack([H(V[:, i]) for i in range(p)], axis=1)
        PHV = HV - V @ (V.T @ HV)
        big = float(onp.max(onp.abs(PHV), initial=0.0))
        phv = big * float(onp.linalg.norm(PHV / big, 2)) if big > 0 else 0.0
        system.cache["kkt-PHV"] = phv
    phv, a = system.cache["kkt-PHV"], _kkt_row_scales(system)
    with onp.errstate(all="ignore"):
        r = system.apply(w) - b
        r1, r2 = r[:n], r[n:]
        q = V @ ((U.T @ (r2 / norms)) / sv)  # J^+ r2
        t = r1 - H(q)
        Vtt = V.T @ t
        ez = _norm2(t - V @ Vtt) / lam
        ey = _norm2(q) + ez
        enu = (_norm2(Vtt) + phv * ez) / float(sv[-1]) / float(onp.min(norms * a))
        wy, wnu = _norm2(w[:n]), _norm2(w[n:] / a)
        whole = onp.hypot(wy, wnu)
        if not whole > 0:  # w = 0 (an iterate that did not move): exact only if r = 0
            return 0.0 if not onp.any(r) else onp.inf
        if primal_only:  # (a Newton step: only its primal part is used, as a size, and
            # an error below primal_atol cannot change the acceptance)
            if ey == 0:
                return 0.0
            e = ey / max(wy, primal_atol)
            return float(e) if max(wy, primal_atol) > 0 and onp.isfinite(e) else onp.inf
        # the whole (balanced) vector, and the primal part on its own (whose error the
        # multipliers, in other units, could otherwise hide); a primal part below 1e-6 of
        # the whole counts as of that size
        error = max(onp.hypot(ey, enu) / whole, ey / max(wy, 1e-6 * whole))
    return float(error) if onp.isfinite(error) else onp.inf


def _row_scales(h, J):
    """Per constraint row: the power of two nearest ``h / max|J_i|`` (``h`` the scale of the
    Hessian block), so that every row of ``[J, 0]`` is of the Hessian's scale (constraints
    may come in different units); 1 for an empty row."""
    out = onp.ones(J.shape[0])
    for i, row in enumerate(J):
        j = float(onp.max(onp.abs(row), initial=0.0))
        if 0 < h < onp.inf and 0 < j < onp.inf:
            # the exponent from the logarithms (h / j itself may underflow or overflow: f x
            # 1e-150 against a row in units of 1e175), kept within the normal range
            e = int(onp.clip(onp.round(onp.log2(h) - onp.log2(j)), -1000, 1000))
            out[i] = float(onp.ldexp(1.0, e))
    return out


def _kkt_scaling(system):
    """``d``: ones, then the balancing scale of each constraint row (:func:`_kkt_row_scales`;
    ones without KKT rows), the one balancing ``D A D`` of a KKT matrix, dense or Krylov."""
    p = system.kkt_rows
    if not p or system.n <= p:
        return onp.ones(system.n)
    return onp.concatenate([onp.ones(system.n - p), _kkt_row_scales(system)])


def _kkt_row_scales(system):
    """The balancing scales of a KKT system's constraint rows (:func:`_row_scales`, the
    Hessian block's scale from one product with a random vector); cached."""
    if "kkt-scales" not in system.cache:
        p = system.kkt_rows
        n = system.n - p
        v = random_vector(n, 3)
        h = float(onp.max(onp.abs(system.apply(onp.concatenate([v, onp.zeros(p)]))[:n])))
        h /= float(onp.max(onp.abs(v), initial=0.0)) if n else 1.0
        system.cache["kkt-scales"] = _row_scales(h, system.kkt_jacobian())
    return system.cache["kkt-scales"]


def _kkt_balanced(system):
    """For a symmetric KKT system ``[[H, J^T], [J, 0]]`` whose blocks differ in scale (``f``
    x 1e4 against constraints of scale 1, or constraints in different units):
    ``(D A D, d)`` with ``D = diag(1, ..., 1, a_1, ..., a_p)``, one power of two per
    constraint row (:func:`_row_scales`; one product with ``H``, ``p`` with ``J``; cached).
    A Krylov solve's residual on the unbalanced matrix is dominated by the larger block, so
    constraint rows could be left unsolved at a small total residual (a derivative wrong by
    1e-4 at f x 1e4 with MINRES). ``None`` when balanced already."""
    p = system.kkt_rows
    if not p or not system.symmetric or system.n <= p:
        return None
    if "kkt-balanced" not in system.cache:
        d = _kkt_scaling(system)
        out = None
        if onp.any((d < 0.5) | (d > 2.0)):
            inner = LinearSystem(
                system.n,
                lambda z: d * system.apply(d * z),
                symmetric=True,
                sign=system.sign,
                kkt_rows=p,
                name=system.name,
            )
            inner.cache["kkt-balanced"] = None  # balanced: no second level
            out = (inner, d)
        system.cache["kkt-balanced"] = out
    return system.cache["kkt-balanced"]


def _axpy(x, y, a):
    """``y += a x`` in place for float64 vectors (BLAS; numpy would allocate ``a x``)."""
    if y.dtype == onp.float64 and x.dtype == onp.float64 and y.flags.c_contiguous:
        sla.blas.daxpy(x, y, a=a)
    else:
        y += a * x


def _lanczos_ritz(alphas, betas):
    """Extreme eigenvalues of the Lanczos tridiagonal that CG's coefficients define."""
    k = len(alphas)
    if k == 0:
        return None
    a, bt = onp.asarray(alphas), onp.asarray(betas)
    d = 1.0 / a
    d[1:] += bt[: k - 1] / a[: k - 1]
    e = onp.sqrt(onp.abs(bt[: k - 1])) / a[: k - 1]
    ev = sla.eigvalsh_tridiagonal(d, e) if k > 1 else d
    return float(ev[0]), float(ev[-1])


class CG(_Krylov):
    """Conjugate gradients for a definite system (an argmin's or argmax's Hessian).

    ``rtol``, ``atol``, ``maxiter`` (default ``10 n + 50``) and ``preconditioner``
    (approximating ``A^{-1}``: a callable, an ``n x n`` matrix or a LinearOperator; or a
    name: ``"auto"``, the default, is Jacobi when the diagonal of ``A`` is known exactly
    (a ``hess`` or ``hess_sparsity`` was given) and none otherwise; ``"jacobi"`` estimates
    the diagonal from a few products when it is not known; ``"ilu"`` needs the sparse
    matrix). For a
    system tagged negative definite CG runs on ``-A``. Unpreconditioned, the run's own
    Lanczos coefficients give Ritz values of ``A`` (``SolveInfo.ritz``); a direction with
    ``p^T A p`` of the wrong sign stops the run, which then fails as not converged.

    Accuracy (CG, MINRES and GMRES alike): at a certified solution the answer's relative
    error is bounded by ``||A w - b|| / (lam ||w||)`` (``SolveInfo.error``; ``lam`` the
    certificate's lower bound on the curvature), and the solve is tightened until that
    bound is at most ``max(1e-6, 10 rtol)`` (or ``10 eps`` times the certified condition,
    what rounding allows), else :class:`~argminlib.LinearSolveError`: at condition ``1e8``
    a residual within ``rtol = 1e-4`` left a derivative 80% wrong. A residual that stalls
    above ``rtol`` is accepted when the bound holds. Without a certificate
    (``certify=False``) only the residual is tested.
    """

    name = "cg"
    needs_definite = True
    accepts_kkt = False

    def _run(self, system, b, M, x0, rtol, target):
        s = -1.0 if system.sign < 0 else 1.0
        n = system.n
        x = onp.zeros(n) if x0 is None else x0.copy()
        r = s * (b - system.apply(x)) if x0 is not None else s * b
        z = M(r) if M else r
        p, rz = z.copy(), float(r @ z)
        alphas, betas, code = [], [], 1
        maxiter = self.maxiter if self.maxiter is not None else 10 * n + 50
        tol = min(target, rtol * float(onp.linalg.norm(b)))
        k = 0
        for k in range(1, maxiter + 1):
            Ap = s * system.apply(p)
            pAp = float(p @ Ap)
            if not pAp > 0:  # wrong curvature (or breakdown): CG cannot go on
                code = -1
                k -= 1
                break
            alpha = rz / pAp
            _axpy(p, x, alpha)  # x += alpha p, in place (one pass over memory)
            _axpy(Ap, r, -alpha)
            alphas.append(alpha)
            if float(onp.linalg.norm(r)) <= tol:
                code = 0
                break
            z = M(r) if M else r
            rz_new = float(r @ z)
            beta = rz_new / rz
            betas.append(beta)
            p *= beta
            p += z
            rz = rz_new
        ritz = _lanczos_ritz(alphas, betas) if (M is None and alphas) else None
        if ritz is not None:
            ritz = (s * ritz[0], s * ritz[1]) if s > 0 else (s * ritz[1], s * ritz[0])
        return x, code, k, ritz


def _scipy_operator(system):
    return spla.LinearOperator((system.n, system.n), matvec=system.apply, dtype=float)


def _scipy_precond(M, n):
    return None if M is None else spla.LinearOperator((n, n), matvec=M, dtype=float)


class MINRES(_Krylov):
    """MINRES (``scipy.sparse.linalg.minres``): symmetric, possibly indefinite systems
    such as a KKT matrix or the Hessian at a saddle point (the preconditioner must be
    positive definite)."""

    name = "minres"

    def _run(self, system, b, M, x0, rtol, target):
        count = [0]
        try:
            w, code = spla.minres(
                _scipy_operator(system),
                b,
                x0,
                rtol=rtol,
                maxiter=self.maxiter if self.maxiter is not None else 10 * system.n + 50,
                M=_scipy_precond(M, system.n),
                callback=lambda _: count.__setitem__(0, count[0] + 1),
            )
        except ValueError as err:  # scipy: "indefinite preconditioner"
            raise LinearSolveError(
                f"MINRES stopped on the {system.name} system: {err}. MINRES needs a "
                "symmetric positive definite preconditioner; pass another one or none."
            ) from None
        return w, code, count[0], None


class GMRES(_Krylov):
    """GMRES (``scipy.sparse.linalg.gmres``): general square systems. ``restart`` sets the
    Krylov subspace size (default ``min(n, 50)``); ``maxiter`` counts restart cycles as in
    scipy (default: as many as make ``10 n + 50`` iterations in all, as for CG and MINRES,
    so that a system GMRES cannot solve fails in bounded time)."""

    name = "gmres"

    def __init__(self, rtol=1e-10, atol=0.0, maxiter=None, preconditioner=None, restart=None):
        super().__init__(rtol, atol, maxiter, preconditioner)
        if restart is not None and not (
            isinstance(restart, numbers.Integral) and not isinstance(restart, bool) and restart >= 1
        ):
            raise InputError(f"GMRES(restart={restart!r}): restart must be None or an integer >= 1")
        self.restart = restart

    def _run(self, system, b, M, x0, rtol, target):
        count = [0]
        restart = self.restart if self.restart is not None else min(system.n, 50)
        cycles = self.maxiter
        if cycles is None:
            cycles = max(2, -(-(10 * system.n + 50) // restart))
        w, code = spla.gmres(
            _scipy_operator(system),
            b,
            x0,
            rtol=rtol,
            atol=0.0,
            restart=restart,
            maxiter=cycles,
            M=_scipy_precond(M, system.n),
            callback=lambda _: count.__setitem__(0, count[0] + 1),
            callback_type="pr_norm",
        )
        return w, code, count[0], None


class NullSpace(LinearSolver):
    """Null-space method for a KKT system ``[[H, J^T], [J, 0]] [w; mu] = [r; s]``.

    With ``F`` an orthonormal basis of ``null(J)``: ``w = J^+ s + F q`` where
    ``(F^T H F) q = F^T (r - H J^+ s)``, solved by ``inner`` (CG by default: ``F^T H F`` is
    definite at a strict constrained minimum or maximum), then ``J^T mu = r - H w`` in the
    least-squares sense. ``J`` is read off ``p`` KKT products and factorised by an SVD; the
    Hessian is never formed. A system without KKT rows goes to ``inner`` directly.
    """

    name = "nullspace"
    reduces_kkt = True

    def __init__(self, inner="cg", rcond=1e-10):
        if not (isinstance(rcond, numbers.Real) and not isinstance(rcond, bool) and 0 < rcond < 1):
            raise InputError(f"NullSpace(rcond={rcond!r}): use a number in (0, 1)")
        self.inner = get_solver(inner)
        self.rcond = rcond
        self.needs_definite = self.inner.needs_definite

    def scaled(self, s):
        inner = self.inner.scaled(s)
        if inner is self.inner:
            return self
        solver = copy.copy(self)
        solver.inner = inner
        return solver

    def validate(self, system):
        p = system.kkt_rows
        if not p:
            return self.inner.validate(system)
        # the inner solver works on the reduced Hessian (size n - p, products only)
        reduced = LinearSystem(system.n - 2 * p, None, symmetric=True, sign=system.sign)
        self.inner.validate(reduced)

    def _basis(self, system):
        if "nullspace" not in system.cache:
            p = system.kkt_rows
            # rows normalised (constraints in any units): J = diag(norms) U S Vt
            U, sv, Vt, norms = constraint_svd(system)
            rank = numerical_rank(sv, self.rcond)
            if rank < p:
                raise LinearSolveError(
                    f"The constraint Jacobian in the {system.name} has rank {rank} < {p}: the "
                    "multipliers are not unique; remove dependent constraints."
                )
            system.cache["nullspace"] = null_basis(Vt)
        return system.cache["nullspace"]

    def _solve(self, system, b):
        p = system.kkt_rows
        if not p:
            return self.inner(system, b)
        n = system.n - p
        F = self._basis(system)
        U, sv, Vt, norms = constraint_svd(system)
        zero = onp.zeros(p)

        def H(w):
            return system.apply(onp.concatenate([w, zero]))[:n]

        r, s = b[:n], b[n:]
        wp = Vt[:p].T @ ((U.T @ (s / norms)) / sv)  # J^+ s = Jn^+ (s / norms)
        reduced = LinearSystem(
            n - p,
            lambda q: F.T @ H(F @ q),
            symmetric=True,
            sign=system.sign,
            name=f"reduced Hessian F^T H F of the {system.name}",
        )
        if system.curvature is not None:  # the certificate's, of this reduced Hessian
            reduced.certify_curvature(*system.curvature)
        q, info = self.inner(reduced, F.T @ (r - H(wp)))
        w = wp + F @ q
        # J^T mu = r - H w, J^T = Vt^T S U^T diag(norms)
        mu = (U @ ((Vt @ (r - H(w))) / sv)) / norms
        out = onp.concatenate([w, mu])
        res = _relative_residual(system.apply(out) - b, b)
        return out, SolveInfo(f"nullspace-{info.method}", info.iterations, res, info.converged)


class Sparse(LinearSolver):
    """Sparse direct solve: factorise the assembled sparse ``A`` once, serve every
    right-hand side (and the transposed system) by back-substitution.

    ``A`` must be assembled: a user's ``hess`` (dense or sparse) or the Hessian recovered
    from ``hess_sparsity`` with one product per column group. ``method``: ``"auto"``
    (tridiagonal/banded Cholesky or LU after a reverse Cuthill-McKee ordering when the band
    is narrow, CHOLMOD when scikit-sparse is installed, ``splu`` otherwise), ``"banded"``,
    ``"cholmod"`` or ``"splu"``; see :func:`argminlib.sparse.factorize`. For a system
    tagged definite the factorisation is a Cholesky one, so its success certifies the
    curvature (:func:`argminlib.certify.by_factorization`). A solve is accepted when its
    componentwise backward error (:func:`.backward_error`) is at most ``BACKWARD_ERROR``:
    judged so, a badly scaled matrix solved exactly is not refused for its units.
    """

    name = "sparse"
    factorizes = True
    #: the largest componentwise backward error of an accepted solve
    BACKWARD_ERROR = 1e-8

    def __init__(self, method="auto"):
        if method not in ("auto", "banded", "cholmod", "splu"):
            raise InputError(
                f"Sparse(method={method!r}): use 'auto', 'banded', 'cholmod' or 'splu'"
            )
        self.method = method

    def _matrix(self, system):
        A = system.assembled()
        if A is None:
            raise InputError(
                f"solver='sparse' needs the {system.name} as a matrix: pass hess= (returning a "
                "scipy.sparse matrix or an array) or hess_sparsity= (the pattern of nonzeros), "
                "or use a Krylov solver such as 'cg'."
            )
        return sp.csr_matrix(A) if not sp.isspmatrix_csr(A) else A

    def factor(self, system):
        """The :class:`argminlib.sparse.Factor` of ``A`` (cached, shared with ``system.T``)."""
        key = ("sparse", self.method)
        if key not in system.cache:
            definite = system.sign if (system.sign and not system.kkt_rows) else 0
            try:
                system.cache[key] = _sparse.factorize(
                    self._matrix(system),
                    definite if system.symmetric else 0,
                    self.method,
                    symmetric=system.symmetric,
                )
            except _sparse.FactorizationError as err:
                raise LinearSolveError(
                    f"The sparse factorisation ({err.method}) of the {system.name} failed: {err}."
                ) from None
        return system.cache[key]

    def _solve(self, system, b):
        fac = self.factor(system)
        w = fac.solve(b, trans=system.transposed)
        if not onp.all(onp.isfinite(w)):
            raise LinearSolveError(f"The sparse solve with the {system.name} produced NaN or inf.")
        A = system.sparse()
        r = A @ w - b
        res = (
            max(_relative_residual(r[:, j], b[:, j]) for j in range(b.shape[1]))
            if b.ndim == 2
            else _relative_residual(r, b)
        )
        eta = backward_error(A, w, b, r)
        info = SolveInfo(
            f"sparse-{fac.method}",
            0,
            res,
            eta <= self.BACKWARD_ERROR,
            b.shape[1] if b.ndim == 2 else 1,
        )
        if not info.converged:
            raise LinearSolveError(
                f"The sparse {fac.method} solve with the {system.name} is not backward stable: "
                f"it solves a system whose entries differ from A's and b's by up to a relative "
                f"{eta:.1e} (> {self.BACKWARD_ERROR:.0e}; relative residual {res:.1e}), so the "
                "factorisation broke down: the matrix is (nearly) singular or, without "
                "pivoting, badly ordered. Use solver='dense' to see which.",
                info=info,
            )
        return w, info

    def _solve_many(self, system, B):
        if B.shape[1] == 0:
            return onp.zeros((system.n, 0)), SolveInfo(self.name, 0, 0.0, True, 0)
        return self._solve(system, B)


class _Plain(LinearSolver):
    """Adapter for a user's plain ``solve(matvec, b) -> w`` function; the answer is checked
    (shape, type, finiteness, residual ``<= rtol ||b||``)."""

    def __init__(self, fun, rtol=1e-6):
        self.fun = fun
        self.rtol = rtol
        self.name = getattr(fun, "__name__", "custom")

    def _solve(self, system, b):
        try:
            out = self.fun(system.apply, b.copy())
        except ArgminError:
            raise
        except (ArithmeticError, onp.linalg.LinAlgError, sla.LinAlgError) as err:
            raise LinearSolveError(
                f"The custom solver {self.name!r} failed on the {system.name} system: {err}"
            ) from None
        except TypeError as err:
            raise InputError(
                f"The custom solver {self.name!r} raised TypeError: {err}. A custom solver is "
                "a function solve(matvec, b) -> w, with matvec(v) the product A v."
            ) from None
        if isinstance(out, tuple):
            raise InputError(
                f"The custom solver {self.name!r} returned a tuple; it must return the solution "
                "w alone (an array of the shape of b)."
            )
        try:
            w = onp.asarray(out)
        except Exception:  # noqa: BLE001 - anything that is not array-like
            w = onp.asarray(None)
        if w.dtype.kind not in "fiu" or w.shape not in (b.shape, (b.size, 1)):
            raise ShapeError(
                f"The custom solver {self.name!r} returned {type(out).__name__} of shape "
                f"{getattr(w, 'shape', '?')} and dtype {w.dtype}; it must return a real array "
                f"of shape {b.shape}."
            )
        w = w.astype(float).reshape(b.shape)
        if not onp.all(onp.isfinite(w)):
            raise NonFiniteError(f"The custom solver {self.name!r} returned NaN or inf.")
        res = _relative_residual(system.apply(w) - b, b)
        info = SolveInfo(self.name, 0, res, res <= self.rtol)
        if not info.converged:
            raise LinearSolveError(
                f"The custom solver {self.name!r} returned relative residual {res:.3e} > "
                f"{self.rtol:.1e} on the {system.name} system.",
                info=info,
            )
        return w, info


_NAMED = {
    "dense": lambda: Dense(),
    "cholesky": lambda: Dense("cholesky"),
    "lu": lambda: Dense("lu"),
    "lstsq": lambda: Dense("lstsq"),
    "cg": lambda: CG(),
    "nullspace": lambda: NullSpace(),
    "minres": lambda: MINRES(),
    "gmres": lambda: GMRES(),
    "sparse": lambda: Sparse(),
}


def get_solver(solver):
    """A solver object for ``solver``: a name (``"dense"``, ``"cholesky"``, ``"lu"``,
    ``"lstsq"``, ``"cg"``, ``"minres"``, ``"gmres"``, ``"nullspace"``, ``"sparse"``), a
    :class:`LinearSolver` (returned as it is) or a plain function ``solve(matvec, b) -> w``.
    ``None`` means ``"dense"``."""
    if solver is None:
        return Dense()
    if isinstance(solver, str):
        try:
            return _NAMED[solver.lower()]()
        except KeyError:
            raise InputError(
                f"Unknown linear solver {solver!r}; use one of {sorted(_NAMED)} "
                "or pass a solver object or a function solve(matvec, b)."
            ) from None
    if isinstance(solver, LinearSolver):
        return solver
    if isinstance(solver, type) and issubclass(solver, LinearSolver):
        return solver()
    if callable(solver):
        return _Plain(solver)
    raise InputError(f"solver must be a name, a solver object or a callable, not {solver!r}")
