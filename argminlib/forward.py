"""Forward (lower-level) solvers: find ``y`` for a given ``x``.

Implicit differentiation does not care how ``y`` was found, only that it satisfies the
optimality conditions; these are the defaults :func:`argminlib.argmin` uses. A user's own
solver is any function ``forward(f, x, y0) -> y``.
"""

from __future__ import annotations

import warnings

import autograd.numpy as anp
import numpy as onp
import scipy.optimize as sopt
import scipy.sparse.linalg as spla
from autograd import grad, hessian
from autograd.tracer import getval

from .exceptions import ForwardSolveError, NonFiniteError

__all__ = ["newton", "stationary_point"]


def _flat_objective(f, x, yshape, sign):
    def obj(z):
        return sign * f(x, anp.reshape(z, yshape))

    g = grad(obj)

    def value(z):
        return float(obj(z))

    def jac(z):
        return onp.asarray(g(z), dtype=float)

    def hessp(z, p):
        return onp.asarray(grad(lambda z_: anp.dot(g(z_), p))(z), dtype=float)

    return value, jac, hessp


def newton(f, x, y0, *, maximize=False, gtol=1e-12, maxiter=500, method="trust-ncg"):
    """Minimise (or maximise) ``f(x, y)`` over ``y`` from ``y0`` with a Newton-type method.

    Uses ``scipy.optimize.minimize`` (``trust-ncg``, Steihaug's truncated CG, by
    default; or ``Newton-CG`` / ``trust-krylov``) with autograd gradients and Hessian-vector
    products, then a few Newton steps to reach ``||grad|| <= gtol``; the Hessian is never
    formed. Returns ``y`` with the shape of ``y0``.
    """
    x = getval(x)
    y0 = onp.asarray(getval(y0), dtype=float)
    value, jac, hessp = _flat_objective(f, x, y0.shape, -1.0 if maximize else 1.0)
    z0 = y0.reshape(-1)
    if not onp.isfinite(value(z0)):
        raise NonFiniteError(
            "f(x, y0) is NaN or inf at the starting point: start the forward solver where f is "
            "finite."
        )
    options = {"maxiter": maxiter}
    options["gtol" if method != "Newton-CG" else "xtol"] = gtol
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sopt.minimize(value, z0, jac=jac, hessp=hessp, method=method, options=options)
    if not onp.all(onp.isfinite(res.x)):
        raise ForwardSolveError(f"{method} diverged to NaN/inf from y0: {res.message}")
    z = _polish(res.x, jac, hessp, gtol)
    return z.reshape(y0.shape) if y0.shape else float(z[0])


def _polish(z, jac, hessp, gtol, steps=5):
    """A few full Newton steps (MINRES on Hessian-vector products) from a point near a
    solution: scipy's trust-region methods can stop with ``||grad||`` well above ``gtol``,
    which would make finite-difference checks of the solution map noisy."""
    g = jac(z)
    for _ in range(steps):
        gnorm = onp.linalg.norm(g)
        if gnorm <= gtol:
            break
        op = spla.LinearOperator((z.size, z.size), matvec=lambda p, z=z: hessp(z, p))
        p, _ = spla.minres(op, -g, rtol=1e-12, maxiter=10 * z.size + 20)
        g_new = jac(z + p)
        if not onp.linalg.norm(g_new) < gnorm:
            break
        z, g = z + p, g_new
    return z


def stationary_point(f, x, y0, *, tol=1e-12, maxiter=200):
    """Find a stationary point ``f_Y(x, y) = 0`` near ``y0`` (any kind: minimum, maximum or
    saddle) by Newton's method on the gradient with the dense autograd Hessian
    (``scipy.optimize.root``, ``hybr``). For small problems."""
    x = getval(x)
    y0 = onp.asarray(getval(y0), dtype=float)
    shape = y0.shape

    def F(z):
        return grad(lambda z_: f(x, anp.reshape(z_, shape)))(z)

    def J(z):
        return hessian(lambda z_: f(x, anp.reshape(z_, shape)))(z)

    res = sopt.root(
        lambda z: onp.asarray(F(z), dtype=float),
        y0.reshape(-1),
        jac=lambda z: onp.asarray(J(z), dtype=float),
        method="hybr",
        options={"xtol": tol, "maxfev": maxiter},
    )
    if not onp.all(onp.isfinite(res.x)):
        raise ForwardSolveError(f"root finding diverged from y0: {res.message}")
    return res.x.reshape(shape) if shape else float(res.x[0])
