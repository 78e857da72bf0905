"""Forward (lower-level) solvers: find ``y`` for a given ``x``.

Implicit differentiation does not care how ``y`` was found, only that it satisfies the
optimality conditions; these are the defaults the problem classes use. A user's own
solver is any function ``forward(f, x, y0) -> y``. Whatever the forward solver returns,
the problem then takes at most a few Newton steps with its certified linear solver (the
one polish of argminlib, :meth:`argminlib.Problem.solution`) and accepts the answer only
when the Newton step is small relative to ``y``.

Every solver here is bounded (iterations and matrix-vector products) and scale-free: the
objective is divided by a measure of its own curvature before scipy sees it, so that
``1e-20 f`` and ``1e20 f`` are solved alike.
"""

from __future__ import annotations

import warnings

import autograd.numpy as anp
import numpy as onp
import scipy.optimize as sopt
import scipy.sparse.linalg as spla
from autograd import grad, hessian, jacobian, value_and_grad

from .certify import lanczos
from .exceptions import ForwardSolveError, InfeasibleError, NonFiniteError
from .implicit import plain
from .partials import flat_values

__all__ = [
    "newton_polish",
    "newton",
    "quasi_newton",
    "gradient_jumps",
    "stationary_point",
    "slsqp",
    "barrier_objective",
    "barrier_solve",
]


class _Budget(Exception):
    pass


def _curvature_scale(value, jac, hessp, z):
    """A positive scale of ``f`` near ``z``: a Rayleigh quotient of the Hessian, else the
    gradient's size, else the value's."""
    rng = onp.random.default_rng(0)
    r = rng.standard_normal(z.size)
    r /= onp.linalg.norm(r)
    for s in (abs(float(r @ hessp(z, r))), float(onp.linalg.norm(jac(z))), abs(value(z))):
        if onp.isfinite(s) and s > 0:
            return s
    return 1.0


def _objective(f, x, yshape, sign):
    def obj(z):
        return sign * f(x, anp.reshape(z, yshape))

    g = grad(obj)

    def value(z):
        return float(obj(z))

    def jac(z):
        return onp.asarray(g(z), dtype=float)

    def hessp(z, p):
        with warnings.catch_warnings():  # (a linear f: autograd warns of a zero Hessian)
            warnings.filterwarnings("ignore", "Output seems independent of input")
            return onp.asarray(grad(lambda z_: anp.dot(g(z_), p))(z), dtype=float)

    return value, jac, hessp


def newton(f, x, y0, *, maximize=False, gtol=1e-10, maxiter=500, escapes=3, steps=20):
    """Minimise (or maximise) ``f(x, y)`` over ``y`` from ``y0``: scipy's trust-region
    Newton-CG (``trust-ncg``) on autograd gradients and Hessian-vector products, on ``f``
    divided by its curvature scale at ``y0`` (so ``gtol`` is relative).

    A trust-region method stops at any stationary point, including a saddle or (from a
    stationary start) a maximum. So at its answer ``steps`` Lanczos iterations look for
    negative curvature; if there is some, the solver moves along the Ritz vector (in the
    direction that decreases ``f``) and restarts, at most ``escapes`` times. The number of
    Hessian-vector products is bounded (``maxiter * (min(n, 200) + 10)``), so a badly scaled
    or unbounded problem raises :class:`~argminlib.ForwardSolveError` instead of hanging.
    Returns ``y`` with the shape of ``y0``.
    """
    x = plain(x)
    y0 = onp.asarray(y0, dtype=float)
    value, jac, hessp = _objective(f, x, y0.shape, -1.0 if maximize else 1.0)
    z = y0.reshape(-1)
    n = z.size
    if not onp.isfinite(value(z)):
        raise NonFiniteError(
            "f(x, y0) is NaN or inf at the starting point: start where f is finite."
        )
    scale = _curvature_scale(value, jac, hessp, z)
    budget = [maxiter * (min(n, 200) + 10)]

    def counted(fun):
        def wrapped(*args):
            budget[0] -= 1
            if budget[0] < 0:
                raise _Budget
            out = fun(*args)
            if not onp.all(onp.isfinite(out)):
                raise NonFiniteError(
                    "f or its derivatives overflowed to inf or NaN during the forward solve; "
                    "rescale f or start closer to the solution."
                )
            return out / scale

        return wrapped

    sval, sjac, shessp = counted(value), counted(jac), counted(hessp)
    for attempt in range(escapes + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                res = sopt.minimize(
                    sval,
                    z,
                    jac=sjac,
                    hessp=shessp,
                    method="trust-ncg",
                    options={"maxiter": maxiter, "gtol": gtol},
                )
            except _Budget:
                raise ForwardSolveError(
                    f"trust-ncg did not converge within its budget of Hessian-vector products "
                    f"({maxiter * (min(n, 200) + 10)}): f may be unbounded "
                    f"{'above' if maximize else 'below'} or badly scaled. Pass a better y0 or "
                    "your own forward solver."
                ) from None
        if not onp.all(onp.isfinite(res.x)):
            raise ForwardSolveError(f"trust-ncg diverged to NaN/inf from y0: {res.message}")
        z = res.x
        if attempt == escapes:
            break
        vals, vecs, _ = lanczos(
            lambda v, z=z: hessp(z, v) / scale, n, min(steps, n), seed=attempt, keep_vectors=True
        )
        big = max(abs(vals[0]), abs(vals[-1]), 1e-300)
        if vals[0] >= -1e-8 * big:
            break
        z = _escape(value, z, vecs[:, 0])
    z = newton_polish(jac, lambda z_, r: _hessian_step(hessp, z_, r), z)
    return z.reshape(y0.shape) if y0.shape else float(z[0])


def quasi_newton(f, x, y0, *, maximize=False, gtol=1e-6, maxiter=2000, bounds=None):
    """Minimise (or maximise) ``f(x, y)`` over ``y`` from ``y0`` by scipy's L-BFGS-B on
    autograd gradients (one backward pass per evaluation, no Hessian products), on ``f``
    divided by the largest entry of its gradient at ``y0`` (so ``gtol`` is the reduction of
    the gradient asked for; at a start where the gradient vanishes, by its curvature
    scale). Returns ``y`` (shape
    of ``y0``) for the problem's Newton polish, which takes it to full accuracy with the
    Hessian the derivative needs anyway: on smooth problems of a few hundred unknowns this
    is several times cheaper than :func:`newton`'s Hessian-vector products. ``bounds``:
    ``(lo, hi)`` arrays over the flattened ``y``, kept by L-BFGS-B.

    A descent method converges to a local minimum from almost every start (a saddle attracts
    only a set of measure zero), but it does not move from a start where the gradient
    vanishes, and stops at any stationary point. So it is the first try, not the only one:
    when the certificate finds a saddle or a maximum at its answer, or the polish cannot
    make it a solution, :class:`~argminlib.Unconstrained` solves again with :func:`newton`
    (trust-region Newton with escapes from saddles) from ``y0``. Raises
    :class:`~argminlib.ForwardSolveError` only on NaN or inf."""
    x = plain(x)
    y0 = onp.asarray(y0, dtype=float)
    value, jac, hessp = _objective(f, x, y0.shape, -1.0 if maximize else 1.0)
    z = y0.reshape(-1)
    if not onp.isfinite(value(z)):
        raise NonFiniteError(
            "f(x, y0) is NaN or inf at the starting point: start where f is finite."
        )
    # f is divided by the size of its gradient at the start, so that gtol asks for a
    # relative reduction of the gradient: a curvature scale (newton's) can make a large
    # gradient look converged where f's curvature at y0 is huge (sqrt(y^2 + 1e-14) at 0)
    g0 = float(onp.max(onp.abs(jac(z)), initial=0.0))
    scale = g0 if onp.isfinite(g0) and g0 > 0 else _curvature_scale(value, jac, hessp, z)
    vg = value_and_grad(
        lambda z_: f(x, anp.reshape(z_, y0.shape)) * ((-1.0 if maximize else 1.0) / scale)
    )

    def fun(z_):
        v, g = vg(z_)
        v, g = float(v), onp.asarray(g, dtype=float)
        if not (onp.isfinite(v) and onp.all(onp.isfinite(g))):
            raise _Budget
        return v, g

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            res = sopt.minimize(
                fun,
                z,
                jac=True,
                method="L-BFGS-B",
                bounds=None if bounds is None else sopt.Bounds(*bounds),
                options={"maxiter": maxiter, "gtol": gtol},
            )
        except _Budget:
            res = None
    if res is None or not onp.all(onp.isfinite(res.x)):
        raise ForwardSolveError("L-BFGS met NaN or inf values of f or its gradient from y0.")
    # (not converged, or stopped at once: the polish and the certificate at the problem
    # decide, and the problem falls back to newton when they refuse)
    return res.x.reshape(y0.shape) if y0.shape else float(res.x[0])


def gradient_jumps(f, x, y, *, rel=1e-6, seed=None):
    """The entries of ``f_Y`` that jump at ``y`` (an array of flat indices; empty where
    ``f`` is smooth), from three gradients along a random direction ``d``.

    Basis: for a ``C^2`` function, the central difference
    ``D(h) = f_Y(y + h d) - f_Y(y - h d)`` is ``2 h f_YY d + O(h^3)``, so it shrinks tenfold
    with ``h``; where the gradient jumps across ``y`` (``sign(y_i)`` at ``y_i = 0``), an entry
    of ``D`` keeps its size ``O(1)`` as ``h`` falls. An entry counts as a jump when
    ``|D_i(h / 10)| > 0.5 |D_i(h)|`` and ``|D_i(h)|`` is far above rounding
    (``1e-6`` of the gradient's size and of ``h |f_YY d|``'s), with a step of
    ``rel * max(1, |y_i|)`` in each coordinate. A smooth function whose curvature changes on
    a scale below that step (``sqrt(y^2 + eps^2)`` with ``eps < rel``) looks kinked at it,
    and is, to the accuracy a derivative at ``y`` can have.
    The random direction (of this process's entropy) crosses every kink through ``y`` with
    probability one."""
    from .randomness import generator  # (a leaf module)

    x = plain(x)
    y = onp.asarray(y, dtype=float)
    shape = y.shape
    g = grad(lambda z_: f(x, anp.reshape(z_, shape)))
    z = y.reshape(-1)
    # each coordinate stepped in its own scale, rel * max(1, |y_i|): a coordinate of 1e8
    # must not make the step of a coordinate of 1 a hundred
    d = generator(seed, 7).standard_normal(z.size)
    d *= onp.maximum(1.0, onp.abs(z)) / (onp.linalg.norm(d) or 1.0)
    h = rel

    def diff(step):
        with warnings.catch_warnings(), onp.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return onp.asarray(g(z + step * d), float) - onp.asarray(g(z - step * d), float)

    D1, D2 = diff(h), diff(h / 10)
    size = float(onp.max(onp.abs(onp.asarray(g(z), float)), initial=0.0))
    floor = 1e-6 * max(size, float(onp.max(onp.abs(D1), initial=0.0)), 1e-300)
    jumps = (onp.abs(D2) > 0.5 * onp.abs(D1)) & (onp.abs(D1) > floor)
    return onp.flatnonzero(jumps & onp.isfinite(D1) & onp.isfinite(D2))


def _hessian_step(hessp, z, r):
    op = spla.LinearOperator((z.size, z.size), matvec=lambda p: hessp(z, p), dtype=float)
    step, _ = spla.minres(op, -r, rtol=1e-12, maxiter=10 * z.size + 20)
    return step


def newton_polish(residual, step, z, steps=5):
    """Full Newton steps ``z + step(z, F(z))`` on ``F(z) = 0`` while ``||F||`` falls (at
    most ``steps``): turns a solver's ``1e-8`` answer into a ``1e-14`` one."""
    r = residual(z)
    for _ in range(steps):
        nr = onp.linalg.norm(r)
        if nr == 0:
            break
        try:
            zn = z + step(z, r)
            rn = residual(zn)
        except (ArithmeticError, onp.linalg.LinAlgError, ValueError):
            break
        if not onp.linalg.norm(rn) < nr:
            break
        z, r = zn, rn
    return z


def _escape(value, z, d):
    """A step along the negative-curvature direction ``d`` that decreases the objective."""
    f0 = value(z)
    length = max(1.0, float(onp.linalg.norm(z)))
    for _ in range(60):
        for s in (1.0, -1.0):
            zn = z + s * length * d
            fn = value(zn)
            if onp.isfinite(fn) and fn < f0:
                return zn
        length *= 0.5
    return z


def stationary_point(f, x, y0, *, tol=1e-12, maxiter=200):
    """Find a stationary point ``f_Y(x, y) = 0`` near ``y0`` (any kind: minimum, maximum or
    saddle) by Newton's method on the gradient with the dense autograd Hessian
    (``scipy.optimize.root``, ``hybr``, at most ``maxiter`` evaluations). For small
    problems."""
    x = plain(x)
    y0 = onp.asarray(y0, dtype=float)
    shape = y0.shape

    def F(z):
        return grad(lambda z_: f(x, anp.reshape(z_, shape)))(z)

    def J(z):
        return hessian(lambda z_: f(x, anp.reshape(z_, shape)))(z)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
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


def slsqp(f, x, y0, *, eq=None, ineq=None, maximize=False, ftol=1e-15, maxiter=1000, bounds=None):
    """Solve ``min_y f(x, y)`` s.t. ``eq(x, y) = 0``, ``ineq(x, y) <= 0`` with scipy's SLSQP
    and autograd derivatives; ``f`` and each constraint are divided by the size of their
    gradients at ``y0`` first. Returns ``y`` with the shape of ``y0``.

    ``bounds``: ``(lo, hi)`` arrays over the flattened ``y`` (``inf`` for none), passed
    to SLSQP. Raises :class:`~argminlib.InfeasibleError` when SLSQP reports incompatible
    constraints and :class:`~argminlib.ForwardSolveError` (with SLSQP's message) for any
    other failure, except a line search that fails near the optimum: that answer is
    returned, and the problem's Newton polish and checks decide. Dense: small and medium
    problems.
    """
    x = plain(x)
    y0 = onp.asarray(y0, dtype=float)
    shape = y0.shape
    z0 = y0.reshape(-1)
    sign = -1.0 if maximize else 1.0

    def obj(z):
        return sign * f(x, anp.reshape(z, shape))

    g = grad(obj)
    fscale = float(onp.linalg.norm(g(z0))) or abs(float(obj(z0))) or 1.0
    cons = []
    for kind, fun, s in (("eq", eq, 1.0), ("ineq", ineq, -1.0)):
        if fun is None:
            continue

        def cf(z, fun=fun, s=s):
            return s * flat_values(fun, x, anp.reshape(z, shape))

        if onp.size(plain(cf(z0))) == 0:  # no constraints of this kind
            continue
        Jc = onp.asarray(jacobian(cf)(z0), dtype=float).reshape(-1, z0.size)
        rs = onp.linalg.norm(Jc, axis=1)
        rs = onp.where(rs > 0, rs, 1.0)
        cons.append(
            {
                "type": kind,
                "fun": lambda z, cf=cf, rs=rs: onp.asarray(cf(z), dtype=float) / rs,
                "jac": lambda z, cf=cf, rs=rs: (
                    onp.asarray(jacobian(cf)(z), dtype=float) / rs[:, None]
                ),
            }
        )
    if not cons and bounds is None:  # nothing to constrain: the trust-region solver
        return newton(f, x, y0, maximize=maximize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sopt.minimize(
            lambda z: float(obj(z)) / fscale,
            z0,
            jac=lambda z: onp.asarray(g(z), dtype=float) / fscale,
            method="SLSQP",
            constraints=cons,
            bounds=None if bounds is None else sopt.Bounds(*bounds),
            options={"ftol": ftol, "maxiter": maxiter},
        )
    if not onp.all(onp.isfinite(res.x)):
        raise ForwardSolveError(f"SLSQP diverged to NaN/inf: {res.message}")
    if not res.success:
        msg = str(res.message)
        if res.status == 4 or "incompatible" in msg.lower():
            raise InfeasibleError(
                f"SLSQP found no feasible point ({msg}): the constraints may be inconsistent. "
                "Check them, or start from a feasible y0."
            )
        violation = 0.0
        for con in cons:
            v = onp.asarray(con["fun"](res.x), dtype=float)
            v = onp.abs(v) if con["type"] == "eq" else onp.maximum(-v, 0.0)
            violation = max(violation, float(onp.max(v, initial=0.0)))
        if violation > 1e-6:
            raise InfeasibleError(
                f"SLSQP found no feasible point: it stopped ({msg}, status {res.status}) at a "
                "point that violates the "
                f"constraints by {violation:.1e} (relative to their gradients): they may be "
                "inconsistent, or linearly dependent (SLSQP fails on redundant equality "
                "constraints even when they are consistent). Check them, remove dependent "
                "ones, or start from a feasible y0."
            )
        # 6/7: singular or rank-deficient constraint matrix (dependent constraints), 8/9:
        # line search or iteration limit near the optimum: the problem's polish and checks
        # decide
        if res.status not in (6, 7, 8, 9):
            raise ForwardSolveError(f"SLSQP failed (status {res.status}): {msg}")
    return res.x.reshape(shape) if shape else float(res.x[0])


def check_strictly_feasible(c, x, y, what):
    """Raise :class:`~argminlib.InfeasibleError` unless ``c(x, y) < 0`` entrywise."""
    cv = onp.asarray(plain(flat_values(c, x, y)), dtype=float)
    bad = onp.flatnonzero(~(cv < 0))
    if bad.size:
        raise InfeasibleError(
            f"{what} is not strictly feasible: c_{bad[0]}(x, y) = {cv[bad[0]]:.3e} >= 0 "
            f"({bad.size} of {cv.size} constraints). The barrier needs c(x, y) < 0: start "
            "from a point strictly inside the feasible set."
        )


def barrier_objective(f, c, t, *, maximize=False):
    """``phi_t(x, y) = t f(x, y) - sum_i log(-c_i(x, y))`` (for ``maximize``:
    ``t f + sum_i log(-c_i)``, to be maximised). Infinite outside the strict interior."""
    s = -1.0 if maximize else 1.0

    def phi(x, y):
        return t * f(x, y) - s * anp.sum(anp.log(-flat_values(c, x, y)))

    return phi


def barrier_solve(f, c, x, y0, t, *, t0=None, mu=10.0, tol=1e-12, maxiter=100, maximize=False):
    """Minimise ``phi_t`` (see :func:`barrier_objective`) by the barrier method.

    From a strictly feasible ``y0``, follow the central path ``t0, mu t0, ..., t`` with
    damped Newton steps (dense autograd Hessian) that backtrack to stay strictly feasible
    (at most ``maxiter`` per value of ``t``). Returns ``y``. Dense: small and medium
    problems.
    """
    x = plain(x)
    y = onp.asarray(y0, dtype=float)
    check_strictly_feasible(c, x, y, "The starting point y0")
    shape = y.shape
    s = -1.0 if maximize else 1.0
    ts, tk = [], min(t, t0 if t0 is not None else 1.0)
    while tk < t:
        ts.append(tk)
        tk *= mu
    ts.append(t)
    z = y.reshape(-1)
    for tk in ts:
        phi = barrier_objective(f, c, tk, maximize=maximize)

        def obj(z_, phi=phi):
            return s * phi(x, anp.reshape(z_, shape))

        g_fun, H_fun = grad(obj), hessian(obj)
        g0 = onp.asarray(g_fun(z), dtype=float)
        for _ in range(maxiter):
            g = onp.asarray(g_fun(z), dtype=float)
            gnorm = onp.linalg.norm(g)
            if gnorm <= tol * max(1.0, onp.linalg.norm(g0)):
                break
            H = onp.asarray(H_fun(z), dtype=float)
            try:
                step = -onp.linalg.solve(H, g)
            except onp.linalg.LinAlgError:
                step = -g
            if g @ step >= 0:  # not a descent direction: fall back to the gradient
                step = -g
            f0, a = float(obj(z)), 1.0
            while a > 1e-12:
                zn = z + a * step
                cv = onp.asarray(flat_values(c, x, zn.reshape(shape)), dtype=float)
                if onp.all(cv < 0):
                    fn = float(obj(zn))
                    if onp.isfinite(fn) and (
                        fn < f0 + 1e-4 * a * (g @ step) or onp.linalg.norm(g_fun(zn)) < 0.5 * gnorm
                    ):
                        break
                a *= 0.5
            else:
                break  # no progress possible: the gradient is at rounding level
            z = zn
        else:
            raise ForwardSolveError(
                f"The barrier method did not converge at t = {tk:g} in {maxiter} Newton steps."
            )
    return z.reshape(shape) if shape else float(z[0])
