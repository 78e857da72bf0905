"""The hypergradient benchmark: finite differences against implicit differentiation.

A ridge-type lower-level problem with one regularisation weight per coefficient,

    y*(x) = argmin_y 1/2 ||X y - tau||^2 + 1/2 sum_i exp(x_i) y_i^2,     x, y in R^n,

and the upper-level loss ``L(x) = 1/2 ||y*(x) - y_val||^2``. The exact hypergradient comes
from the adjoint ``H lam = y* - y_val`` with ``H = X^T X + diag(exp(x))``:
``dL/dx_i = -lam_i exp(x_i) y*_i``; with ``X`` of ``N << n`` rows the Woodbury identity
solves with ``H`` exactly in ``O(n N^2)``, so the reference is exact at every size.

:func:`run` times each method and reports its error against that reference;
``benchmarks/bench_hypergradient.py`` prints the table and chapter 6 of the book plots it.
"""

from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as onp

from .fd import fd_grad
from .forward import newton
from .unconstrained import implicit_vjp
from .unrolling import timed

__all__ = [
    "RidgeProblem",
    "Row",
    "run",
    "format_table",
    "METHODS",
    "GroupRidge",
    "sweep",
    "SWEEP_METHODS",
]

METHODS = ("forward", "fd", "dense", "cg", "minres")


class RidgeProblem:
    """The benchmark problem at size ``n`` with ``rows`` observations (seeded)."""

    def __init__(self, n, rows=100, seed=0):
        rng = onp.random.default_rng(seed)
        self.n, self.rows = n, rows
        self.X = rng.normal(size=(rows, n)) / onp.sqrt(rows)
        self.tau = rng.normal(size=rows)
        self.y_val = rng.normal(size=n) * 0.1
        self.x = rng.normal(size=n) * 0.5

    def f(self, x, y):
        r = anp.dot(self.X, y) - self.tau
        return 0.5 * anp.dot(r, r) + 0.5 * anp.sum(anp.exp(x) * y**2)

    def upper(self, y):
        return 0.5 * anp.sum((y - self.y_val) ** 2)

    def solve_H(self, x, b):
        """``(X^T X + diag(exp(x)))^{-1} b`` exactly, by the Woodbury identity."""
        d = onp.exp(x)
        Db = b / d
        K = onp.eye(self.rows) + (self.X / d) @ self.X.T
        return Db - (self.X.T @ onp.linalg.solve(K, self.X @ Db)) / d

    def solution(self, x):
        return self.solve_H(x, self.X.T @ self.tau)

    def hypergradient(self, x):
        """The exact ``dL/dx`` by the analytic adjoint."""
        y = self.solution(x)
        lam = self.solve_H(x, y - self.y_val)
        return -lam * onp.exp(x) * y

    def loss(self, x, y0=None):
        y = newton(self.f, x, self.y0 if y0 is None else y0)
        return float(self.upper(y))

    @property
    def y0(self):
        return onp.zeros(self.n)


@dataclass
class Row:
    """One benchmark measurement: size ``n``, ``method``, best time in ``seconds`` and
    ``error`` (max relative error of the hypergradient; of ``y*`` for ``"forward"``)."""

    n: int
    method: str
    seconds: float
    error: float  # max relative error of the hypergradient (of y* for "forward")


def relative_error(a, b):
    """``max |a - b| / max |b|``: the error measure of the benchmarks."""
    return float(onp.max(onp.abs(a - b)) / max(onp.max(onp.abs(b)), 1e-300))


def run(sizes=(10, 100, 1000, 10000), fd_max=1000, dense_max=1000, repeat=3, seed=0):
    """Time every method at every size; returns a list of :class:`Row`.

    Methods: ``forward`` (the lower-level solve by :func:`argminlib.newton`), ``fd``
    (central differences, ``2n`` warm-started re-solves, up to ``fd_max``), ``dense``
    (implicit VJP with the formed Hessian, up to ``dense_max``), ``cg`` and ``minres``
    (matrix-free implicit VJP with Hessian-vector products). Times are the best of
    ``repeat`` runs, in seconds.
    """
    rows = []
    for n in sizes:
        p = RidgeProblem(n, seed=seed)
        ref = p.hypergradient(p.x)
        t, y = timed(lambda p=p: newton(p.f, p.x, p.y0), repeat)
        rows.append(Row(n, "forward", t, relative_error(y, p.solution(p.x))))
        u = y - p.y_val  # dL/dy
        if n <= fd_max:
            t, g = timed(lambda p=p, y=y: fd_grad(lambda x: p.loss(x, y0=y), p.x, 1e-5), 1)
            rows.append(Row(n, "fd", t, relative_error(g, ref)))
        if n <= dense_max:
            t, g = timed(lambda p=p, y=y, u=u: implicit_vjp(p.f, p.x, y, u, solver="dense"), 1)
            rows.append(Row(n, "dense", t, relative_error(g, ref)))
        for name in ("cg", "minres"):
            t, g = timed(
                lambda p=p, y=y, u=u, s=name: implicit_vjp(p.f, p.x, y, u, solver=s), repeat
            )
            rows.append(Row(n, name, t, relative_error(g, ref)))
    return rows


def format_table(rows):
    """A plain-text table: one line per size, time (s) and relative error per method."""
    sizes = sorted({r.n for r in rows})
    head = f"{'n':>7} | " + " | ".join(f"{m:^19}" for m in METHODS)
    lines = [head, f"{'':>7} | " + " | ".join(f"{'time s':>8} {'rel.err':>10}" for _ in METHODS)]
    lines.append("-" * len(head))
    for n in sizes:
        cells = []
        for m in METHODS:
            r = next((r for r in rows if r.n == n and r.method == m), None)
            cells.append(f"{r.seconds:8.4f} {r.error:10.1e}" if r else f"{'-':>8} {'-':>10}")
        lines.append(f"{n:>7} | " + " | ".join(cells))
    return "\n".join(lines)


class GroupRidge:
    """Ridge regression with ``m`` regularisation weights shared by groups of coefficients,

        y*(x) = argmin_y 1/2 ||X y - tau||^2 + 1/2 sum_i exp(x_{g(i)}) y_i^2,

    ``y`` in ``R^n``, ``x`` in ``R^m``, coefficient ``i`` in group ``g(i) = floor(i m / n)``
    (contiguous blocks): the number of parameters ``m`` and the number of unknowns ``n``
    vary independently. ``X`` has ``rows`` rows of unit expected norm, so the spectrum of
    ``f_YY = X^T X + diag(exp(x_g))`` (and the Krylov iteration counts) do not grow with
    ``n``. :meth:`forward` solves exactly by the Woodbury identity in ``O(n rows^2)``, and
    :meth:`hypergradient` is the analytic adjoint, the reference of every error."""

    def __init__(self, n, m, rows=50, seed=0):
        if not 1 <= m <= n:
            raise ValueError(f"GroupRidge needs 1 <= m <= n (got m={m}, n={n})")
        rng = onp.random.default_rng(seed)
        self.n, self.m, self.rows = n, m, rows
        self.X = rng.normal(size=(rows, n)) / onp.sqrt(n)
        self.tau = rng.normal(size=rows)
        self.y_val = 0.1 * rng.normal(size=n)
        self.x = 0.5 * rng.normal(size=m)
        self.groups = onp.arange(n) * m // n
        self.y0 = onp.zeros(n)

    def weights(self, x):
        """``exp(x_{g(i)})`` for every coefficient ``i`` (autograd-differentiable)."""
        return anp.exp(x)[self.groups]

    def f(self, x, y):
        r = anp.dot(self.X, y) - self.tau
        return 0.5 * anp.dot(r, r) + 0.5 * anp.sum(self.weights(x) * y**2)

    def upper(self, y):
        return 0.5 * anp.sum((y - self.y_val) ** 2)

    def solve_H(self, x, b):
        """``f_YY^{-1} b`` exactly (Woodbury: one ``rows x rows`` solve)."""
        d = onp.exp(onp.asarray(x, dtype=float))[self.groups]
        Db = b / d
        K = onp.eye(self.rows) + (self.X / d) @ self.X.T
        return Db - (self.X.T @ onp.linalg.solve(K, self.X @ Db)) / d

    def forward(self, f, x, y0):
        """The exact lower-level solution (``forward=`` of :func:`argminlib.argmin`)."""
        return self.solve_H(x, self.X.T @ self.tau)

    def loss(self, x):
        """``L(x) = 1/2 ||y*(x) - y_val||^2`` with the exact forward solve."""
        return float(self.upper(self.forward(None, x, None)))

    def hypergradient(self, x):
        """``dL/dx_k = -exp(x_k) sum_{g(i) = k} lam_i y_i``, ``f_YY lam = y* - y_val``."""
        y = self.forward(None, x, None)
        lam = self.solve_H(x, y - self.y_val)
        return -onp.exp(x) * onp.bincount(self.groups, lam * y, minlength=self.m)


#: The methods that :func:`sweep` times besides the forward solve (finite differences, and
#: implicit VJPs with each linear solver).
SWEEP_METHODS = ("fd", "dense", "cg", "minres", "gmres")


def sweep(shapes, *, fd_max=100, dense_max=1000, repeat=3, seed=0, certify=True):
    """Time the hypergradient of :class:`GroupRidge` at every ``(n, m)`` of ``shapes``.

    Every method computes ``dL/dx`` from scratch with the same exact forward solve:
    ``"forward"`` is that solve alone (its ``error``: of ``y*`` as returned by
    :func:`argminlib.argmin`, polished and checked with CG, against an independent dense solve when
    ``n <= dense_max``, else against the Woodbury one); ``"fd"`` central differences,
    ``2m`` forward solves (when ``m <= fd_max``); ``"dense"`` (``n <= dense_max``),
    ``"cg"``, ``"minres"`` and ``"gmres"`` ``autograd.grad`` through
    :func:`argminlib.argmin` with that linear solver. Returns a list of dicts with keys
    ``n, m, method, seconds, error`` (max relative error; best time of ``repeat`` runs).
    """
    from autograd import grad

    from .api import argmin

    out = []
    for n, m in shapes:
        p = GroupRidge(n, m, seed=seed)
        ref = p.hypergradient(p.x)

        def add(method, seconds, error, n=n, m=m):
            out.append(dict(n=n, m=m, method=method, seconds=seconds, error=error))

        t, _ = timed(lambda p=p: p.forward(None, p.x, None), repeat)
        y = argmin(p.f, p.x, p.y0, forward=p.forward, solver="cg")
        if n <= dense_max:
            H = p.X.T @ p.X + onp.diag(p.weights(p.x))
            y_ref = onp.linalg.solve(H, p.X.T @ p.tau)
        else:
            y_ref = p.forward(None, p.x, None)
        add("forward", t, relative_error(y, y_ref))
        if m <= fd_max:
            t, g = timed(lambda p=p: fd_grad(p.loss, p.x, 1e-5), repeat)
            add("fd", t, relative_error(g, ref))
        for name in SWEEP_METHODS[1:]:
            if name == "dense" and n > dense_max:
                continue

            def L(x, p=p, name=name):
                y = argmin(p.f, x, p.y0, forward=p.forward, solver=name, certify=certify)
                return p.upper(y)

            t, g = timed(lambda L=L, p=p: grad(L)(p.x), repeat)
            add(name, t, relative_error(g, ref))
    return out
