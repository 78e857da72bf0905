"""The one implicit-differentiation mechanism of argminlib.

A problem class declares an *optimality function* ``F(x, z)`` whose zeros are its
solutions: the gradient ``f_Y`` for an unconstrained argmin or argmax, the KKT residual for
a constrained one, the barrier gradient for the log-barrier approximation. ``z`` is a flat
1-D array of length ``n`` (the solution, possibly followed by Lagrange multipliers); ``x``
is the parameter, a float or an array of any shape. At a solution ``F(x, z(x)) = 0``, and
differentiating in ``x`` (the implicit function theorem) gives

    A dz/dx = -B,    A = dF/dz (n x n),    B = dF/dx (n x size(x)).

Every derivative argminlib returns is one of the three functions below, with ``A`` and ``B``
never formed unless the linear solver asks for the dense ``A``:

* :func:`root_jvp` (forward mode): ``dz = solve(A, -B v)``: one solve per direction ``v``;
* :func:`root_vjp` (reverse mode): ``w = solve(A^T, -u)``, then ``u dz/dx = w^T B``: one solve
  per cotangent ``u``, however many entries ``x`` has;
* :func:`root_jacobian`: the full ``dz/dx``, by whichever of the two needs fewer solves.

Products with ``A`` and ``B`` are autograd VJPs of ``F`` (for a gradient ``F`` a VJP in ``z``
is a Hessian-vector product). The lemmas of the paper are closed forms of these functions.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as onp
from autograd import grad, make_vjp
from autograd.tracer import getval

from .exceptions import NonFiniteError, NotStationaryError, ShapeError
from .linsolve import Dense, LinearSystem, get_solver

__all__ = ["Linearization", "linearize", "root_jvp", "root_vjp", "root_jacobian"]


def _jvp_from_vjp(vjp, n_out_zero):
    """Forward products from a linear VJP: ``J v = d/dw <vjp(w), v>`` (reverse over reverse)."""

    def jvp(v):
        return grad(lambda w: anp.sum(vjp(w) * v))(n_out_zero)

    return jvp


class Linearization:
    """The optimality function ``F`` linearised at ``(x, z)``.

    Attributes
    ----------
    residual : array (n,)
        ``F(x, z)``.
    A : LinearSystem
        ``dF/dz`` as products (``A.matvec``, ``A.rmatvec``); symmetric when declared so.
    vjp_x : callable
        ``w -> w^T B``, an array of the shape of ``x``.
    jvp_x : callable
        ``v -> B v`` for ``v`` of the shape of ``x``, an array (n,).
    """

    def __init__(self, F, x, z, *, symmetric, definite, name, constraints=0):
        z = anp.reshape(z, (-1,)) if anp.ndim(z) != 1 else z
        self.x, self.z, self.n = x, z, int(anp.size(getval(z)))
        vjp_z, r = make_vjp(lambda z_: F(x, z_))(z)
        if anp.shape(getval(r)) != (self.n,):
            raise ShapeError(
                f"The optimality function returned shape {anp.shape(getval(r))}, expected "
                f"({self.n},) (one equation per unknown)."
            )
        self.residual = r
        self.vjp_x, _ = make_vjp(lambda x_: F(x_, z))(x)
        zeros = onp.zeros(self.n)
        matvec = vjp_z if symmetric else _jvp_from_vjp(vjp_z, zeros)
        self.A = LinearSystem(
            self.n,
            matvec,
            vjp_z,
            symmetric=symmetric,
            definite=definite,
            name=name,
            constraints=constraints,
        )
        self.jvp_x = _jvp_from_vjp(self.vjp_x, zeros)

    def check_stationary(self, tol, what="the optimality conditions"):
        """Raise :class:`NotStationaryError` if ``||F(x, z)||_2 > tol``."""
        r = onp.asarray(getval(self.residual), dtype=float)
        if not onp.all(onp.isfinite(r)):
            raise NonFiniteError(
                f"{what} evaluate to NaN or inf at this point; check f and the inputs."
            )
        norm = float(onp.linalg.norm(r))
        if norm > tol:
            raise NotStationaryError(
                f"y does not satisfy {what}: residual norm {norm:.3e} > tol {tol:.1e}. "
                "The implicit derivative is only valid at a solution: solve the lower-level "
                "problem more accurately (or pass a better y), or raise tol if this accuracy "
                "is what you want.",
                residual=norm,
                tol=tol,
            )
        return norm


def linearize(
    F,
    x,
    z,
    *,
    symmetric=True,
    definite=0,
    name="Jacobian of the optimality conditions",
    constraints=0,
):
    """Linearise the optimality function ``F(x, z)`` at ``(x, z)``; see :class:`Linearization`.

    ``symmetric``, ``definite`` and ``constraints`` describe ``dF/dz`` for the linear
    solvers (see :class:`~argminlib.LinearSystem`)."""
    return Linearization(
        F, x, z, symmetric=symmetric, definite=definite, name=name, constraints=constraints
    )


def root_jvp(lin, v, solver=None):
    """Forward mode: ``dz/dx v = -A^{-1} (B v)``.

    ``lin`` is a :class:`Linearization`, ``v`` has the shape of ``x``; returns
    ``(dz, info)`` with ``dz`` of shape (n,) and ``info`` a :class:`SolveInfo`.
    """
    solve = get_solver(solver)
    return solve(lin.A, -lin.jvp_x(v))


def root_vjp(lin, u, solver=None):
    """Reverse mode: ``u^T dz/dx = -(A^{-T} u)^T B``.

    ``u`` has shape (n,); returns ``(g, info)`` with ``g`` of the shape of ``x``.
    """
    solve = get_solver(solver)
    w, info = solve(lin.A.T, -u)
    return lin.vjp_x(w), info


def root_jacobian(lin, solver=None):
    """The full ``dz/dx`` of shape ``(n,) + shape(x)``, with its :class:`SolveInfo`.

    Forms ``B`` by ``min(n, size(x))`` products and solves ``A J = -B`` with one multi-column
    solve (dense) or one Krylov solve per column.
    """
    solve = get_solver(solver)
    xshape = anp.shape(getval(lin.x))
    m = int(onp.prod(xshape)) if xshape else 1
    eye_n = onp.eye(lin.n)
    if isinstance(solve, Dense) or m <= lin.n:
        # forward: A J = -B, with B (n, m) formed row by row from n VJPs
        rows = [anp.reshape(lin.vjp_x(eye_n[i]), (m,)) for i in range(lin.n)]
        B = anp.stack(rows) if lin.n else anp.zeros((0, m))
        J, info = solve(lin.A, -B)
    else:
        # reverse: row i of J is -(A^{-T} e_i)^T B, so n adjoint solves instead of m
        W, info = solve(lin.A.T, -eye_n)
        J = anp.stack([anp.reshape(lin.vjp_x(W[:, i]), (m,)) for i in range(lin.n)])
    return anp.reshape(J, (lin.n,) + xshape), info
