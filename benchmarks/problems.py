"""The performance benchmark's two problems, each with its analytic floor.

Both are bi-level problems ``min_x L(y*(x))`` with ``L(y) = 1/2 ||y - y_val||^2`` and a
lower level whose solution has a closed form, so that every method of argminlib can be run
with the *same* forward solve (``forward=problem.forward``) and compared with the least any
method can cost, the *floor*: that forward solve plus one adjoint solve written by hand
with numpy/scipy, reusing the forward factorisation (:meth:`floor`). Each problem also gives
its analytic hypergradient (:meth:`hypergradient`), the reference of the errors.

* :class:`Ridge`: ``f(x, y) = 1/2 ||X y - t||^2 + 1/2 sum_i exp(x_i) y_i^2`` with a dense
  ``X`` of ``2n x n``: one regularisation weight per coefficient. ``H = X^T X + diag(e^x)``
  is dense; the forward solve forms it and factorises it by Cholesky.
* :class:`Chain`: 1-D denoising with one weight per edge,
  ``f(x, y) = 1/2 ||y - s||^2 + 1/2 sum_i exp(x_i) (y_{i+1} - y_i)^2``, written with
  ``np.diff`` (:meth:`Chain.f_slicing` is the same function written with slices, to measure
  the difference). ``H = I + D^T diag(e^x) D`` is tridiagonal; the forward solve is
  LAPACK's tridiagonal ``pttrf``/``pttrs``.

Each problem also offers what a user could hand-write for argminlib: ``hess(x, y)`` (a dense
array for Ridge, a ``scipy.sparse`` matrix for Chain), ``hessp(x, y, v)`` and
``hess_sparsity`` (Chain).
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as onp
import scipy.linalg as sla
import scipy.sparse as sp
from autograd import grad, make_vjp
from autograd.builtins import tuple as atuple
from scipy.linalg import lapack

import argminlib as al
from argminlib.unrolling import timed

__all__ = ["Ridge", "Chain", "upper", "autograd_least", "best_time"]


#: seconds that :func:`best_time` may spend on more runs of a fast call
BUDGET = 0.1


def best_time(fun, repeat=3, budget=BUDGET):
    """``(seconds, result)``: the best time of at least ``repeat`` calls of ``fun()``, and of
    as many more as fit in ``budget`` seconds (at most 2000): a call of a fraction of a
    millisecond is timed hundreds of times, the floor and each method alike (a best of
    three such calls varies by up to 2x on a loaded machine)."""
    t, out = timed(fun, 1)
    more = max(repeat - 1, min(2000, int(budget / max(t, 1e-7))))
    t2, out = timed(fun, more)
    return min(t, t2), out


def upper(problem):
    """The upper-level loss ``L(y) = 1/2 ||y - y_val||^2`` of ``problem`` (autograd)."""

    def L(y):
        return 0.5 * anp.sum((y - problem.y_val) ** 2)

    return L


class Ridge:
    """Ridge regression with one weight per coefficient, ``X`` dense ``2n x n`` (seeded)."""

    name = "ridge"

    def __init__(self, n, seed=0):
        rng = onp.random.default_rng(seed)
        self.n = n
        self.X = rng.standard_normal((2 * n, n)) / onp.sqrt(2 * n)
        self.t = rng.standard_normal(2 * n)
        self.x = 0.5 * rng.standard_normal(n)
        self.y_val = 0.1 * rng.standard_normal(n)
        self.y0 = onp.zeros(n)
        self.Xt_t = self.X.T @ self.t

    def f(self, x, y):
        r = anp.dot(self.X, y) - self.t
        return 0.5 * anp.dot(r, r) + 0.5 * anp.sum(anp.exp(x) * y**2)

    def _factor(self, x):
        H = self.X.T @ self.X
        H[onp.diag_indices(self.n)] += onp.exp(x)
        return sla.cho_factor(H, lower=True, overwrite_a=True, check_finite=False)

    def forward(self, f, x, y0):
        """The closed-form lower-level solve (``forward=`` of argminlib): ``y*(x)``."""
        return sla.cho_solve(self._factor(x), self.Xt_t, check_finite=False)

    def floor(self, x):
        """Forward solve plus one adjoint solve by hand: the hypergradient ``dL/dx``."""
        c = self._factor(x)
        y = sla.cho_solve(c, self.Xt_t, check_finite=False)
        lam = sla.cho_solve(c, y - self.y_val, check_finite=False)
        return -lam * onp.exp(x) * y

    def solution(self, x):
        return self.forward(None, x, None)

    def hypergradient(self, x):
        """The analytic ``dL/dx`` (in exact arithmetic, the floor's answer), by ``solve``."""
        H = self.X.T @ self.X + onp.diag(onp.exp(x))
        y = onp.linalg.solve(H, self.Xt_t)
        lam = onp.linalg.solve(H, y - self.y_val)
        return -lam * onp.exp(x) * y

    @property
    def gram(self):
        """``X^T X``, computed once: what a user's ``hess`` would precompute (it does not
        depend on ``x``; the forward solve and the floor form it at every call)."""
        if getattr(self, "_gram", None) is None:
            self._gram = self.X.T @ self.X
        return self._gram

    def hess(self, x, y):
        H = self.gram.copy()
        H[onp.diag_indices(self.n)] += onp.exp(x)
        return H

    def hessp(self, x, y, v):
        return self.gram @ v + onp.exp(x) * v


class Chain:
    """1-D denoising of a noisy signal ``s`` with one weight ``exp(x_i)`` per edge."""

    name = "chain"

    def __init__(self, n, seed=0):
        rng = onp.random.default_rng(seed)
        self.n = n
        grid = onp.linspace(0, 1, n)
        self.s = onp.sign(onp.sin(6 * onp.pi * grid)) + 0.3 * rng.standard_normal(n)
        self.x = onp.log(1.0 + rng.random(n - 1))
        self.y_val = onp.sign(onp.sin(6 * onp.pi * grid))
        self.y0 = onp.zeros(n)
        rows = onp.r_[onp.arange(n), onp.arange(n - 1), onp.arange(1, n)]
        cols = onp.r_[onp.arange(n), onp.arange(1, n), onp.arange(n - 1)]
        self.hess_sparsity = sp.csr_matrix((onp.ones(rows.size, bool), (rows, cols)), (n, n))
        self.hess_sparsity.sort_indices()
        # positions of the diagonal, upper and lower entries in the CSR data
        start = self.hess_sparsity.indptr[:-1]
        self._diag = start + (onp.arange(n) > 0)
        self._upper = self._diag[:-1] + 1
        self._lower = start[1:]

    def f(self, x, y):
        d = anp.diff(y)
        return 0.5 * anp.sum((y - self.s) ** 2) + 0.5 * anp.sum(anp.exp(x) * d * d)

    def f_slicing(self, x, y):
        """The same ``f`` with ``y[1:] - y[:-1]`` instead of ``np.diff(y)``."""
        d = y[1:] - y[:-1]
        return 0.5 * anp.sum((y - self.s) ** 2) + 0.5 * anp.sum(anp.exp(x) * d * d)

    def _bands(self, x):
        w = onp.exp(x)
        d = onp.ones(self.n)
        d[:-1] += w
        d[1:] += w
        return d, -w

    def _factor(self, x):
        d, e = self._bands(x)
        dd, ee, info = lapack.dpttrf(d, e)
        assert info == 0
        return dd, ee

    def forward(self, f, x, y0):
        dd, ee = self._factor(x)
        return lapack.dpttrs(dd, ee, self.s)[0]

    def floor(self, x):
        dd, ee = self._factor(x)
        y = lapack.dpttrs(dd, ee, self.s)[0]
        lam = lapack.dpttrs(dd, ee, y - self.y_val)[0]
        return -onp.exp(x) * onp.diff(lam) * onp.diff(y)

    def solution(self, x):
        return self.forward(None, x, None)

    def hypergradient(self, x):
        """The analytic ``dL/dx_i = -exp(x_i) (D lam)_i (D y)_i`` by a sparse solve."""
        H = self.hess(x, None).tocsc()
        y = sp.linalg.spsolve(H, self.s)
        lam = sp.linalg.spsolve(H, y - self.y_val)
        return -onp.exp(x) * onp.diff(lam) * onp.diff(y)

    def hess(self, x, y):
        """``f_YY`` as a CSR matrix on the (fixed) structure of ``hess_sparsity``."""
        d, e = self._bands(x)
        data = onp.empty(3 * self.n - 2)
        data[self._diag], data[self._upper], data[self._lower] = d, e, e
        P = self.hess_sparsity
        return sp.csr_matrix((data, P.indices, P.indptr), shape=P.shape)

    def hessp(self, x, y, v):
        w = onp.exp(x)
        dv = w * onp.diff(v)
        out = v.copy()
        out[:-1] -= dv
        out[1:] += dv
        return out


def autograd_least(p, options, repeat=3):
    """A lower bound, in seconds, on the time of each method of ``options`` (``name ->
    argmin options``) for problem ``p``: the autograd work the method cannot do without,
    timed alone, and none of argminlib's own.

    Every method needs the forward solve, one trace of ``f_Y`` in ``(x, y)`` (the residual,
    and ``f_XY``) and one backward pass through it (``w^T f_XY``); then autograd products
    ``f_YY v`` (each timed after a trace in ``y`` alone): ``n`` to form the Hessian
    (``"dense"``), one per colour group of ``hess_sparsity`` (names starting with
    ``"sparsity"``); none for a user's ``hess``/``hessp`` (``"hess"``, ``"hessp"``: the
    check against autograd that issue 8 asks for could come free with the backward pass, as
    argminlib's adjoint check does, so it is not counted). A method that factorises
    (``"dense"``, ``"sparsity"``, ``"hess"``) also pays the factorisation the floor does:
    the user's forward solve is a black box whose factor cannot be reused. Any other method
    pays the Krylov iterations of its adjoint solve, each one product: autograd's, the
    user's ``hessp`` (``"hessp"``) or the recovered sparse matrix's (``"sparsity-cg"``); the
    certificate's Lanczos steps are not counted, and the iterations are argminlib's own (at
    its tolerance). A target below this bound cannot be met by any method built on
    autograd's products and the same linear solver at the same tolerance."""
    y = p.solution(p.x)
    f_y = grad(p.f, 1)
    t_fwd = best_time(lambda: p.forward(p.f, p.x, p.y0), repeat)[0]
    t_trace, back = best_time(
        lambda: make_vjp(lambda xy: f_y(xy[0], xy[1]))(atuple((p.x, y)))[0], repeat
    )
    w = onp.random.default_rng(0).standard_normal(p.n)
    t_back = best_time(lambda: back(w), repeat)[0]
    hvp = make_vjp(lambda z: f_y(p.x, z))(y)[0]
    t_hvp = best_time(lambda: hvp(w), repeat)[0]
    if isinstance(p, Ridge):  # the Cholesky factorisation of H alone (not forming X^T X)
        H_dense = p.hess(p.x, y)
        t_factor = best_time(  # LAPACK in place on a Fortran-ordered copy, the fastest
            lambda: sla.cho_factor(H_dense.copy().T, lower=True, overwrite_a=True), repeat
        )[0]
    else:
        t_factor = best_time(lambda: p._factor(p.x), repeat)[0]
    # products that are not autograd's, for the Krylov iterations of the other methods
    t_user = best_time(lambda: p.hessp(p.x, y, w), repeat)[0]
    if hasattr(p, "hess_sparsity"):
        H = p.hess(p.x, y)
        t_matvec = best_time(lambda: H @ w, repeat)[0]
    out = {}
    for name, opts in options.items():
        factorises = name in ("dense", "sparsity", "hess")
        if name == "dense":
            k = p.n
        elif name.startswith("sparsity"):
            k = al.sparse.HessianCompression(p.hess_sparsity, p.n).ngroups
        else:
            k = 0
        t = t_fwd + t_trace + t_back + k * t_hvp + (t_factor if factorises else 0.0)
        if not factorises:  # the adjoint solve's Krylov iterations, each one product
            prob = al.Unconstrained(p.f, p.y0, forward=p.forward, **opts)
            its = prob.vjp(p.x, y, y - p.y_val, return_info=True)[1].iterations
            product = {"hessp": t_user, "sparsity-cg": None}.get(name, t_hvp)
            t += its * (t_matvec if product is None else product)
        out[name] = t
    return out
