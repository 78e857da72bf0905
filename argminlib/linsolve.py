"""Linear solvers for the implicit-differentiation core.

Implicit differentiation needs one linear system per derivative: ``A w = b`` with ``A`` the
Jacobian of the optimality conditions in the solution (the Hessian ``f_YY`` for an
unconstrained problem, the KKT matrix for a constrained one). The system is described by
:class:`LinearSystem`, which only promises matrix-vector products; a solver is any callable
``solver(system, b) -> (w, SolveInfo)``.

* :class:`Dense` forms ``A`` from ``n`` products and factorises it (Cholesky where ``A``
  must be definite, LU otherwise, or least squares). It checks the eigenvalues first, so a
  singular or wrongly curved Hessian is reported with its smallest eigenvalue. Dense solves
  are written with ``autograd.numpy`` and can be differentiated again (nested argmins).
* :class:`CG`, :class:`MINRES` and :class:`GMRES` never form ``A``: they wrap the products
  in a ``scipy.sparse.linalg.LinearOperator`` and report iterations and residual.

A plain function ``solve(matvec, b) -> w`` is accepted too (see :func:`get_solver`).
"""

from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as onp
import scipy.sparse.linalg as spla
from autograd.scipy.linalg import solve_triangular
from autograd.tracer import getval

from .exceptions import CurvatureError, LinearSolveError, NonFiniteError, SingularHessianError

__all__ = [
    "SolveInfo",
    "LinearSystem",
    "Dense",
    "CG",
    "MINRES",
    "GMRES",
    "NullSpace",
    "get_solver",
]


@dataclass(frozen=True)
class SolveInfo:
    """Outcome of one (or several, merged) linear solves.

    ``method``: solver name; ``iterations``: Krylov iterations (1 for a dense solve);
    ``residual``: relative residual ``||A w - b|| / ||b||`` (largest over merged solves);
    ``converged``: whether the residual met the solver's tolerance; ``solves``: number of
    right-hand sides.
    """

    method: str
    iterations: int
    residual: float
    converged: bool
    solves: int = 1

    def merge(self, other: SolveInfo) -> SolveInfo:
        """Combine the outcomes of two solves with the same solver."""
        return SolveInfo(
            self.method,
            self.iterations + other.iterations,
            max(self.residual, other.residual),
            self.converged and other.converged,
            self.solves + other.solves,
        )


class LinearSystem:
    """A square linear operator known only by its products.

    Parameters
    ----------
    n : int
        Size of the (flat) system.
    matvec, rmatvec : callable
        ``v -> A v`` and ``v -> A^T v`` on 1-D arrays of length ``n``.
    symmetric : bool
        Whether ``A`` is symmetric (then ``matvec`` and ``rmatvec`` agree).
    definite : {+1, -1, 0}
        ``+1`` if ``A`` must be positive definite (argmin), ``-1`` negative definite
        (argmax), ``0`` if only invertibility is required.
    name : str
        What ``A`` is, for error messages ("Hessian f_YY", "KKT matrix", ...).
    constraints : int
        For a KKT matrix ``[[H, J^T], [J, 0]]``: the number ``p`` of constraint rows. Then
        ``definite=+1`` asks for ``H`` positive definite on the null space of ``J`` (a
        strict constrained minimum), which holds exactly when ``A`` has ``n - p`` positive
        and ``p`` negative eigenvalues; ``definite=-1`` asks for the mirror image.
    """

    def __init__(
        self,
        n,
        matvec,
        rmatvec=None,
        *,
        symmetric=False,
        definite=0,
        name="matrix",
        constraints=0,
    ):
        self.n = int(n)
        self.constraints = int(constraints)
        self.matvec = matvec
        self.rmatvec = matvec if (rmatvec is None and symmetric) else rmatvec
        self.symmetric = bool(symmetric)
        self.definite = int(definite)
        self.name = name
        self._matrix = None

    @property
    def T(self) -> LinearSystem:
        """The transposed system (the adjoint system of reverse mode)."""
        if self.symmetric:
            return self
        if self.rmatvec is None:
            raise NotImplementedError(f"the {self.name} has no transpose product")
        t = LinearSystem(self.n, self.rmatvec, self.matvec, definite=self.definite, name=self.name)
        if self._matrix is not None:
            t._matrix = anp.transpose(self._matrix)
        return t

    def matrix(self):
        """The dense ``n x n`` matrix, built from ``n`` transpose products and cached."""
        if self._matrix is None:
            eye = onp.eye(self.n)
            if self.n == 0:
                self._matrix = anp.zeros((0, 0))
            elif self.rmatvec is not None:  # A^T e_i is row i of A
                self._matrix = anp.stack([self.rmatvec(eye[i]) for i in range(self.n)])
            else:  # A e_i is column i of A
                self._matrix = anp.transpose(
                    anp.stack([self.matvec(eye[i]) for i in range(self.n)])
                )
        return self._matrix


def _by_column(solve, system, B):
    """Solve column by column (matrix-free solvers have one right-hand side at a time)."""
    cols, info = [], None
    for j in range(B.shape[1]):
        w, i = solve(system, B[:, j])
        cols.append(w)
        info = i if info is None else info.merge(i)
    return onp.stack(cols, axis=1), info


def _as_2d(b):
    return b if anp.ndim(b) == 2 else anp.reshape(b, (-1, 1))


def _relative_residual(A, w, b):
    A, w, b = onp.asarray(getval(A)), onp.asarray(getval(w)), onp.asarray(getval(b))
    r = A @ w - b
    nb = onp.linalg.norm(b)
    return float(onp.linalg.norm(r) / nb) if nb > 0 else float(onp.linalg.norm(r))


class Dense:
    """Dense solve from the formed matrix, with eigenvalue checks.

    Parameters
    ----------
    method : {"auto", "cholesky", "lu", "lstsq"}
        ``auto`` uses Cholesky when the system must be definite and LU otherwise.
        ``lstsq`` returns the minimum-norm least-squares solution (use it only when you
        know the singular direction does not matter; singularity is then not an error).
    rcond : float
        ``A`` is declared singular when ``min |eig| <= rcond * max |eig|`` (symmetric) or
        ``sigma_min <= rcond * sigma_max`` (general).
    """

    name = "dense"

    def __init__(self, method="auto", rcond=1e-10):
        if method not in ("auto", "cholesky", "lu", "lstsq"):
            raise ValueError(f"Dense(method={method!r}): use 'auto', 'cholesky', 'lu' or 'lstsq'")
        self.method = method
        self.rcond = rcond

    def check(self, system):
        """Raise if the formed matrix is non-finite, singular or of the wrong sign."""
        A = onp.asarray(getval(system.matrix()), dtype=float)
        if not onp.all(onp.isfinite(A)):
            raise NonFiniteError(
                f"The {system.name} contains NaN or inf; check f and its derivatives at y."
            )
        if A.size == 0:
            return
        if system.symmetric:
            eig = onp.linalg.eigvalsh(0.5 * (A + A.T))
            scale = max(onp.max(onp.abs(eig)), onp.finfo(float).tiny)
            p = system.constraints
            if system.definite and p:
                self._check_inertia(system, eig, scale)
            elif system.definite > 0 and eig[0] <= self.rcond * scale:
                kind = "singular" if abs(eig[0]) <= self.rcond * scale else "indefinite"
                raise CurvatureError(
                    f"The {system.name} is not positive definite ({kind}): smallest eigenvalue "
                    f"{eig[0]:.3e} (largest {eig[-1]:.3e}), so y is not a strict local minimum. "
                    "Re-solve to a minimum, or use mode='max' / mode='stationary' if y is meant "
                    "to be a maximum or a saddle point.",
                    eigenvalue=float(eig[0]),
                )
            elif system.definite < 0 and eig[-1] >= -self.rcond * scale:
                kind = "singular" if abs(eig[-1]) <= self.rcond * scale else "indefinite"
                raise CurvatureError(
                    f"The {system.name} is not negative definite ({kind}): largest eigenvalue "
                    f"{eig[-1]:.3e} (smallest {eig[0]:.3e}), so y is not a strict local maximum. "
                    "Re-solve to a maximum, or use mode='min' / mode='stationary'.",
                    eigenvalue=float(eig[-1]),
                )
            small = eig[onp.argmin(onp.abs(eig))]
            if self.method != "lstsq" and abs(small) <= self.rcond * scale:
                raise SingularHessianError(
                    f"The {system.name} is singular: eigenvalue {small:.3e} against largest "
                    f"|eigenvalue| {scale:.3e}. The solution is not locally unique, so its "
                    "derivative is undefined; regularise the problem (e.g. add a small "
                    "strongly convex term) or use Dense(method='lstsq') for the minimum-norm "
                    "derivative."
                )
        elif self.method != "lstsq":
            s = onp.linalg.svd(A, compute_uv=False)
            if s[-1] <= self.rcond * max(s[0], onp.finfo(float).tiny):
                raise SingularHessianError(
                    f"The {system.name} is singular: smallest singular value {s[-1]:.3e} "
                    f"against largest {s[0]:.3e}. The derivative is undefined here; "
                    "check the constraint qualification or regularise the problem."
                )

    def _check_inertia(self, system, eig, scale):
        """A KKT matrix of a strict constrained minimum has ``n - p`` positive and ``p``
        negative eigenvalues (and the mirror image for a maximum)."""
        p, n = system.constraints, system.n
        tiny = self.rcond * scale
        pos, neg = int(onp.sum(eig > tiny)), int(onp.sum(eig < -tiny))
        want_pos, want_neg = (n - p, p) if system.definite > 0 else (p, n - p)
        if (pos, neg) == (want_pos, want_neg):
            return
        if pos + neg < n:
            return  # singular: reported below with the eigenvalue
        kind = "minimum" if system.definite > 0 else "maximum"
        sign = "positive" if system.definite > 0 else "negative"
        raise CurvatureError(
            f"The {system.name} has {pos} positive and {neg} negative eigenvalues; a strict "
            f"constrained {kind} with {p} active constraints needs {want_pos} and {want_neg}. "
            f"The Hessian of the Lagrangian is not {sign} definite on the constraints' null "
            f"space, so y is not a strict constrained {kind}. Re-solve, or use "
            "mode='stationary'.",
            eigenvalue=float(eig[want_neg] if system.definite > 0 else eig[want_neg - 1]),
        )

    def __call__(self, system, b):
        self.check(system)
        A = system.matrix()
        B = _as_2d(b)
        method = self.method
        if method == "auto":
            definite = system.symmetric and system.definite and not system.constraints
            method = "cholesky" if definite else "lu"
        if method == "cholesky":
            if not system.definite:
                raise ValueError("Dense(method='cholesky') needs a definite system (mode min/max)")
            s = float(system.definite)
            L = anp.linalg.cholesky(s * A)
            W = s * solve_triangular(
                anp.transpose(L), solve_triangular(L, B, lower=True), lower=False
            )
        elif method == "lu":
            W = anp.linalg.solve(A, B)
        else:
            W = anp.dot(anp.linalg.pinv(A, rcond=self.rcond), B)
        w = W if anp.ndim(b) == 2 else anp.reshape(W, (-1,))
        info = SolveInfo(f"dense-{method}", 1, _relative_residual(A, w, b), True, B.shape[1])
        return w, info


class _Krylov:
    """Shared driver of the matrix-free solvers (subclasses set ``name`` and ``_run``)."""

    name = "krylov"

    def __init__(self, rtol=1e-10, atol=0.0, maxiter=None, preconditioner=None):
        if not rtol > 0:
            raise ValueError(f"{type(self).__name__}(rtol={rtol}): rtol must be positive")
        self.rtol = rtol
        self.atol = atol
        self.maxiter = maxiter
        self.preconditioner = preconditioner

    def _operator(self, system, sign=1.0):
        n = system.n

        def mv(v):
            out = onp.asarray(getval(system.matvec(onp.ravel(v))), dtype=float)
            return sign * out

        return spla.LinearOperator((n, n), matvec=mv, dtype=float)

    def _precond(self, n):
        M = self.preconditioner
        if M is None or isinstance(M, spla.LinearOperator) or hasattr(M, "shape"):
            return M
        if callable(M):
            return spla.LinearOperator((n, n), matvec=lambda v: onp.asarray(M(v)), dtype=float)
        raise TypeError("preconditioner must be a callable v -> M v, a matrix or a LinearOperator")

    def __call__(self, system, b):
        b = onp.asarray(getval(b), dtype=float)
        if b.ndim == 2:  # several right-hand sides: one Krylov solve per column
            return _by_column(self, system, b)
        if not onp.all(onp.isfinite(b)):
            raise NonFiniteError("The right-hand side of the linear solve contains NaN or inf.")
        nb = onp.linalg.norm(b)
        if nb == 0:
            return onp.zeros_like(b), SolveInfo(self.name, 0, 0.0, True)
        # CG needs a positive definite operator: for an argmax solve (-A) w = -b.
        if self.name == "cg" and system.constraints:
            raise ValueError(
                f"CG needs a definite matrix and the {system.name} is indefinite by "
                "construction; use solver='minres' (or 'gmres', 'dense')."
            )
        sign = -1.0 if (self.name == "cg" and system.definite < 0) else 1.0
        op = self._operator(system, sign)
        count = [0]

        def callback(*_):
            count[0] += 1

        # scipy's stopping tests use their own residual estimates (MINRES scales by ||A|| ||w||);
        # the solve is accepted when the true relative residual is within 100 x rtol, and
        # restarted from its answer with a tighter internal rtol (at most 3 times) if not.
        tol = max(self.rtol, self.atol / nb) * 100.0
        M, w, rtol = self._precond(system.n), None, self.rtol
        for _ in range(4):
            w, code = self._run(op, sign * b, M, callback, w, rtol)
            Aw = onp.asarray(getval(system.matvec(w)), dtype=float)
            if not onp.all(onp.isfinite(Aw)) or not onp.all(onp.isfinite(w)):
                raise NonFiniteError(
                    f"{self.name.upper()} produced NaN or inf: the {system.name} products are "
                    "not finite at this point."
                )
            res = float(onp.linalg.norm(Aw - b) / nb)
            if res <= tol or code != 0:
                break
            rtol *= 1e-2
        info = SolveInfo(self.name, count[0], res, bool(res <= tol))
        if not info.converged:
            raise LinearSolveError(
                f"{self.name.upper()} did not converge on the {system.name} system: "
                f"{info.iterations} iterations, relative residual {res:.3e} > {tol:.1e} "
                f"(scipy code {code}). Raise maxiter, loosen rtol, pass a preconditioner, or "
                "use solver='dense' to inspect the eigenvalues"
                + (" (CG needs a definite matrix: try 'minres')." if self.name == "cg" else "."),
                info=info,
            )
        if system.definite and not system.constraints:
            # w^T A w = b^T A^{-1} b has the sign of A when A is definite: a cheap certificate.
            q = float(w @ Aw)
            if system.definite * q <= 0:
                want = "positive" if system.definite > 0 else "negative"
                raise CurvatureError(
                    f"The {system.name} is not {want} definite: the solve found a direction "
                    f"with w^T A w = {q:.3e}. y is not a strict local "
                    f"{'minimum' if system.definite > 0 else 'maximum'}; use mode='stationary' "
                    "with solver='minres' if that is intended.",
                    eigenvalue=q / float(w @ w),
                )
        return w, info


class CG(_Krylov):
    """Conjugate gradients (``scipy.sparse.linalg.cg``): for definite systems.

    ``rtol``, ``atol``, ``maxiter`` and ``preconditioner`` (approximating ``A^{-1}``: a
    callable, matrix or LinearOperator) are passed to scipy.
    """

    name = "cg"

    def _run(self, op, b, M, callback, x0, rtol):
        return spla.cg(
            op, b, x0, rtol=rtol, atol=self.atol, maxiter=self.maxiter, M=M, callback=callback
        )


class MINRES(_Krylov):
    """MINRES (``scipy.sparse.linalg.minres``): for symmetric, possibly indefinite systems
    such as a KKT matrix or the Hessian at a saddle point."""

    name = "minres"

    def _run(self, op, b, M, callback, x0, rtol):
        return spla.minres(op, b, x0, rtol=rtol, maxiter=self.maxiter, M=M, callback=callback)


class GMRES(_Krylov):
    """GMRES (``scipy.sparse.linalg.gmres``): for general square systems. ``restart`` sets
    the Krylov subspace size; ``maxiter`` counts restart cycles as in scipy."""

    name = "gmres"

    def __init__(self, rtol=1e-10, atol=0.0, maxiter=None, preconditioner=None, restart=None):
        super().__init__(rtol, atol, maxiter, preconditioner)
        self.restart = restart

    def _run(self, op, b, M, callback, x0, rtol):
        return spla.gmres(
            op,
            b,
            x0,
            rtol=rtol,
            atol=self.atol,
            restart=self.restart,
            maxiter=self.maxiter,
            M=M,
            callback=callback,
            callback_type="pr_norm",
        )


class NullSpace:
    """Null-space method for a KKT system ``[[H, J^T], [J, 0]] [w; mu] = [r; s]``.

    With ``F`` an orthonormal basis of ``null(J)``: ``w = J^+ s + F q`` where
    ``(F^T H F) q = F^T (r - H J^+ s)``, solved by ``inner`` (CG by default: ``F^T H F`` is
    definite at a strict constrained minimum or maximum), then ``J^T mu = r - H w`` in the
    least-squares sense. ``J`` and products with ``H`` are read off the KKT products, so the
    Hessian is never formed; ``J`` (``p x n``) is formed from ``p`` products and factorised
    by an SVD. A system without constraints goes to ``inner`` directly.
    """

    name = "nullspace"

    def __init__(self, inner="cg", rcond=1e-10):
        self.inner = inner
        self.rcond = rcond

    def __call__(self, system, b):
        inner = get_solver(self.inner)
        p = system.constraints
        if not p:
            return inner(system, b)
        b = onp.asarray(getval(b), dtype=float)
        if b.ndim == 2:
            return _by_column(self, system, b)
        n = system.n - p

        def K(w, mu):
            return onp.asarray(getval(system.matvec(onp.concatenate([w, mu]))), dtype=float)

        J = onp.stack([K(onp.zeros(n), e)[:n] for e in onp.eye(p)])  # rows of J
        U, sv, Vt = onp.linalg.svd(J)
        rank = int(onp.sum(sv > self.rcond * max(sv[0], onp.finfo(float).tiny)))
        if rank < p:
            raise SingularHessianError(
                f"The constraint Jacobian in the {system.name} has rank {rank} < {p}: the "
                "multipliers are not unique; remove dependent constraints."
            )
        F = Vt[p:].T
        zero = onp.zeros(p)
        r, s = b[:n], b[n:]
        wp = Vt[:p].T @ ((U.T @ s) / sv)  # J^+ s
        reduced = LinearSystem(
            n - p,
            lambda q: F.T @ K(F @ q, zero)[:n],
            symmetric=True,
            definite=system.definite,
            name=f"reduced Hessian F^T H F of the {system.name}",
        )
        q, info = inner(reduced, F.T @ (r - K(wp, zero)[:n]))
        w = wp + F @ q
        mu = onp.linalg.lstsq(J.T, r - K(w, zero)[:n], rcond=None)[0]
        out = onp.concatenate([w, mu])
        res = float(onp.linalg.norm(K(w, mu) - b) / max(onp.linalg.norm(b), 1e-300))
        return out, SolveInfo(f"nullspace-{info.method}", info.iterations, res, info.converged)


class _Plain:
    """Adapter for a user's plain ``solve(matvec, b) -> w`` function."""

    def __init__(self, fun, rtol=1e-6):
        self.fun = fun
        self.rtol = rtol
        self.name = getattr(fun, "__name__", "custom")

    def __call__(self, system, b):
        b = onp.asarray(getval(b), dtype=float)
        if b.ndim == 2:
            return _by_column(self, system, b)

        def mv(v):
            return onp.asarray(getval(system.matvec(onp.asarray(v))), dtype=float)

        w = onp.asarray(self.fun(mv, b), dtype=float).reshape(b.shape)
        nb = onp.linalg.norm(b)
        res = float(onp.linalg.norm(mv(w) - b) / nb) if nb else 0.0
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
}


def get_solver(solver):
    """Return a solver object for ``solver``.

    ``solver`` is a name (``"dense"``, ``"cholesky"``, ``"lu"``, ``"lstsq"``, ``"cg"``,
    ``"minres"``, ``"gmres"``, ``"nullspace"``), an instance of :class:`Dense`,
    :class:`CG`, :class:`MINRES`, :class:`GMRES`, :class:`NullSpace`, or a plain function
    ``solve(matvec, b) -> w``.
    """
    if solver is None:
        return Dense()
    if isinstance(solver, str):
        try:
            return _NAMED[solver.lower()]()
        except KeyError:
            raise ValueError(
                f"Unknown linear solver {solver!r}; use one of {sorted(_NAMED)} "
                "or pass a solver object or a function solve(matvec, b)."
            ) from None
    if isinstance(solver, (Dense, _Krylov, _Plain, NullSpace)):
        return solver
    if callable(solver):
        return _Plain(solver)
    raise TypeError(f"solver must be a name, a solver object or a callable, not {solver!r}")
