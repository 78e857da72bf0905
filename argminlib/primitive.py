"""Argmin problems as autograd primitives.

A :class:`Problem` knows how to solve itself for a parameter ``x`` and declares its
optimality function; :func:`solution` is the autograd primitive that returns the flat
solution ``z(x)``. Its VJP is :func:`argminlib.root_vjp` (one linear solve per
cotangent, the forward solver is never unrolled) and its JVP is
:func:`argminlib.root_jvp`. Dense solves are written in ``autograd.numpy``, so the
VJP can itself be differentiated: an objective that contains another argmin works.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as onp
from autograd.extend import defjvp, defvjp, primitive
from autograd.tracer import getval

from .exceptions import NonFiniteError, ShapeError
from .implicit import linearize, root_jacobian, root_jvp, root_vjp
from .linsolve import Dense, get_solver

__all__ = ["Problem", "solution", "as_float_array", "check_finite"]

_MODES = {"min": 1, "max": -1, "stationary": 0}


def as_float_array(a, name):
    """``a`` (a float or array, possibly an autograd box) as floats; raises on NaN/inf."""
    if isinstance(getval(a), (int, onp.integer)) or (
        hasattr(getval(a), "dtype") and onp.issubdtype(getval(a).dtype, onp.integer)
    ):
        a = anp.asarray(getval(a), dtype=float)
    check_finite(a, name)
    return a


def check_finite(a, name):
    v = onp.asarray(getval(a), dtype=float)
    if not onp.all(onp.isfinite(v)):
        raise NonFiniteError(
            f"{name} contains NaN or inf ({int(onp.sum(~onp.isfinite(v)))} of {v.size} "
            "entries); pass finite values."
        )


def mode_sign(mode):
    try:
        return _MODES[mode]
    except KeyError:
        raise ValueError(f"mode={mode!r}: use 'min', 'max' or 'stationary'") from None


class Problem:
    """A parameterised problem whose solutions are the zeros of ``optimality(x, z)``.

    ``z`` is flat: the ``ny`` entries of ``y`` followed by any multipliers. Subclasses set
    ``yshape``, ``n`` (length of ``z``), ``constraints`` (multiplier count ``p``),
    ``definite`` (+1 min, -1 max, 0 stationary), ``name`` (of ``dF/dz``), ``what`` (of the
    conditions), ``solver`` and ``tol``, and implement ``optimality(x, z)``,
    ``solve(x) -> z`` (forward solve) and ``pack(x, y) -> z`` (a given solution ``y`` with
    its multipliers recovered).

    At a solution ``y`` the derivatives are :meth:`jacobian`, :meth:`jvp` and :meth:`vjp`;
    calling the problem with ``x`` solves it and returns ``y`` as an autograd primitive.
    """

    symmetric = True
    definite = 0
    constraints = 0
    name = "Jacobian of the optimality conditions"
    what = "the optimality conditions"
    tol = 1e-6
    solver = None

    @property
    def ny(self):
        return self.n - self.constraints

    def primal(self, z):
        """``y`` (shaped) from the flat ``z``; traceable by autograd."""
        y = z[: self.ny] if self.constraints else z
        return y[0] if self.yshape == () else anp.reshape(y, self.yshape)

    def linearize(self, x, z):
        """Check that ``z`` solves the problem at ``x`` and linearise there."""
        lin = linearize(
            self.optimality,
            x,
            z,
            symmetric=self.symmetric,
            definite=self.definite,
            name=self.name,
            constraints=self.constraints,
        )
        lin.check_stationary(self.tol, self.what)
        return lin

    # -- derivatives at a known solution y ----------------------------------------------

    def linearize_at(self, x, y):
        """Check a given solution ``y`` at ``x`` (shape, finite values, feasibility,
        optimality), recover its multipliers, and return the :class:`Linearization` of the
        optimality conditions there (``.A`` is ``dF/dz`` as products, e.g. Hessian-vector
        products for an unconstrained problem)."""
        x = as_float_array(x, "x")
        y = as_float_array(y, "y")
        if anp.shape(getval(y)) != self.yshape:
            raise ShapeError(
                f"y has shape {anp.shape(getval(y))}; the problem's y has {self.yshape}."
            )
        return self.linearize(x, self.pack(x, y))

    def check_at(self, x, y):
        """Every check a closed-form lemma needs before its formula: those of
        :meth:`linearize_at`, then the eigenvalues (or, for a KKT matrix, the inertia and
        the rank) of the dense ``dF/dz``. Returns the :class:`Linearization`."""
        lin = self.linearize_at(x, y)
        Dense().check(lin.A)
        return lin

    def _at(self, x, y):
        return as_float_array(x, "x"), self.linearize_at(x, y)

    def jacobian(self, x, y, return_info=False):
        """``dy/dx`` at the solution ``y``: shape ``shape(y) + shape(x)``."""
        x, lin = self._at(x, y)
        J, info = root_jacobian(lin, get_solver(self.solver))
        xshape = anp.shape(getval(x))
        J = anp.reshape(J[: self.ny], self.yshape + xshape)
        J = J if anp.ndim(J) else float(J)
        return (J, info) if return_info else J

    def jvp(self, x, y, v, return_info=False):
        """``(dy/dx) v`` for ``v`` of the shape of ``x``: one linear solve."""
        x, lin = self._at(x, y)
        v = as_float_array(v, "v")
        if anp.shape(getval(v)) != anp.shape(getval(x)):
            raise ShapeError(
                f"v has shape {anp.shape(getval(v))}; the JVP needs the shape of x, "
                f"{anp.shape(getval(x))}."
            )
        dz, info = root_jvp(lin, v, get_solver(self.solver))
        return (self.primal(dz), info) if return_info else self.primal(dz)

    def vjp(self, x, y, u, return_info=False):
        """``u^T (dy/dx)`` for ``u`` of the shape of ``y``: one linear solve."""
        x, lin = self._at(x, y)
        u = as_float_array(u, "u")
        if anp.shape(getval(u)) != self.yshape:
            raise ShapeError(
                f"u has shape {anp.shape(getval(u))}; the VJP needs the shape of y, {self.yshape}."
            )
        uz = anp.concatenate([anp.reshape(u, (-1,)), onp.zeros(self.constraints)])
        g, info = root_vjp(lin, uz, get_solver(self.solver))
        return (g, info) if return_info else g

    # -- the primitive ------------------------------------------------------------------

    def z_vjp(self, x, z, u):
        return root_vjp(self.linearize(x, z), u, get_solver(self.solver))[0]

    def z_jvp(self, x, z, v):
        return root_jvp(self.linearize(x, z), v, get_solver(self.solver))[0]

    def __call__(self, x):
        """The solution at ``x``, differentiable with autograd."""
        return self.primal(solution(x, self))


@primitive
def solution(x, problem):
    """The flat solution ``z(x)`` of ``problem``: an autograd primitive."""
    return anp.asarray(problem.solve(x), dtype=float)


defvjp(solution, lambda z, x, problem: lambda u: problem.z_vjp(x, z, u), None)
defjvp(solution, lambda v, z, x, problem: problem.z_jvp(x, z, v), None)
