"""Many independent argmins at once: ``y_b(x) = argmin_{y_b} f_b(x_b, y_b)``, ``b < B``.

``f(x, y)`` receives the whole batch (``x`` with a leading axis of length ``B``, ``y`` of
shape ``(B, n)``) and returns the ``B`` objectives, problem ``b`` depending only on ``x[b]``
and ``y[b]``. The mathematical basis is one fact: the Hessian in ``y`` of the summed
objective ``F(x, y) = sum_b f_b(x_b, y_b)`` is block diagonal, ``H = diag(H_0, ...,
H_{B-1})`` with ``H_b = d^2 f_b / dy_b^2``, and its gradient ``F_Y`` stacks the problems'
gradients. So one autograd Hessian-vector product of ``F`` (``_Point.hvp``) is a
product with every block at once, and everything is built on it:

* the dense blocks: ``n`` products, direction ``e_j`` in every block giving column ``j`` of
  every ``H_b``; then numpy's stacked Cholesky factorises them all in one call;
* block-diagonal CG (``_block_cg``): stacked ``(B, n)`` vectors, one product per
  iteration for all problems, each with its own step scalars and convergence test;
* the forward solve: Newton on ``F`` (a stacked Newton step is each problem's own), with
  a line search on each ``f_b``; then at most five Newton steps of polish and the
  acceptance test, per problem;
* the curvature certificate, per problem, and the check that ``f`` does not couple them.

The implicit function theorem then holds block by block: ``dy_b/dx_b = -H_b^{-1}
f_{YX,b}``, and ``dy_b/dx_c = 0`` for ``c != b``. A VJP with ``ybar`` (shape ``(B, n)``) is
``xbar = -(d/dx)[F_Y(x, y) . w]`` with ``w_b = H_b^{-1} ybar_b``: one block solve and one
backward pass, whatever ``B``. The block solve is :func:`argminlib.linear_solve`, the
primitive whose own derivative is another solve with the (symmetric) operator, and the
result is attached by the primitive of :class:`argminlib.Solution`'s, so that
``autograd.grad``, ``jacobian``, ``make_jvp`` and second derivatives through the batch are
exact, as for a single problem.
"""

from __future__ import annotations

import numbers

import numpy as onp
from autograd import grad, make_vjp
from autograd.builtins import tuple as atuple
from autograd.extend import vspace
from autograd.tracer import getval

from .certify import _equilibration, _needed_steps, as_certify
from .exceptions import (
    ArgminError,
    CurvatureError,
    ForwardSolveError,
    IllConditionedError,
    InputError,
    LinearSolveError,
    NonFiniteError,
    ShapeError,
    SingularHessianError,
    UncertifiedError,
)
from .implicit import _attach, is_traced, linear_solve, plain, traceable
from .linsolve import CG, Dense
from .partials import call_user
from .problem import check_tol, check_x, mode_sign
from .randomness import generator, random_vector

__all__ = ["argmin_batch", "argmax_batch"]

EPS = onp.finfo(float).eps
#: a Newton step below this (relative to ``max(1, |y_b|)``) is not taken: the answer is
#: already accurate to rounding level for the derivative
NEGLIGIBLE = 1e-10
#: Newton iterations of the default forward solve, and steps of the polish after a user's
POLISH, NEWTON_STEPS = 5, 50
#: the coupling check flags a product component above this, relative to its row's size
COUPLING_RTOL = 1e-8
SCALED = (
    ", after scaling it to a unit diagonal, which keeps its inertia and the accuracy of a "
    "factorised solve"
)


def argmin_batch(f, x, y0, *, mode="min", solver="dense", tol=1e-6, certify=True, forward=None):
    """``B`` independent ``argmin_{y_b} f(x, y)[b]`` from the starts ``y0`` (shape ``(B, n)``),
    as one autograd primitive of ``x`` (result ``(B, n)``).

    ``x``: an array with a leading axis of length ``B`` (integers and nested lists are
    read as floats), or a tuple, list or dict of such arrays (a parameter shared by all
    problems is passed broadcast, e.g. ``lam * ones(B)``: its gradient is then the sum).
    ``f(x, y)`` gets the whole batch and returns shape ``(B,)``; ``f(x, y)[b]`` must depend
    only on ``x[b]`` and ``y[b]`` (checked at the solution, by ``_coupling``).

    ``solver``: ``"dense"`` (the ``B`` Hessians from ``n`` block-diagonal products,
    factorised by one stacked Cholesky) or ``"cg"`` (block-diagonal conjugate gradients);
    ``argminlib.Dense()`` or ``argminlib.CG(rtol=..., maxiter=...)`` also.
    ``forward(f, x, y0) -> (B, n)``: your own solver; by default Newton on the summed
    objective (see the module docstring). Each answer is polished by at most five Newton
    steps and accepted only if its Newton step is at most ``tol * max(1, |y_b|)``.
    ``certify``: ``True``, ``False`` or an :class:`argminlib.Certify` (``rcond``, Lanczos
    ``steps``...): each ``H_b`` must be positive definite (``mode="max"``: negative) and
    well conditioned (``_Batch.certify``).

    Every failure names the problems: a saddle in problem 417 of 1000 raises a
    :class:`~argminlib.CurvatureError` that says "problem 417", how many others fail and
    the first few of them (``error.problems``: all their indices).

    Derivatives: ``dy_b/dx_b = -H_b^{-1} f_{YX,b}`` (block by block); a VJP is one block
    solve ``w_b = H_b^{-1} ybar_b`` and one backward pass ``xbar = -(d/dx)[F_Y . w]``."""
    if mode not in ("min", "max"):
        mode_sign(mode)  # unknown names: the library's message
        raise InputError(
            f"mode={mode!r}: argmin_batch solves minima ('min') or maxima ('max'); for "
            "stationary points solve each problem with argminlib.argmin(mode='stationary')."
        )
    if forward is not None and not callable(forward):
        raise InputError(f"forward={forward!r}: pass a function forward(f, x, y0) -> (B, n)")
    if not callable(f):
        raise InputError(f"f={f!r} is not callable: pass f(x, y) -> array of shape (B,)")
    y0 = _check_y0(y0)
    x = _check_x(x, y0.shape[0])
    batch = _Batch(f, y0.shape, mode_sign(mode), solver, check_tol(tol), as_certify(certify))
    sol = batch.solve(plain(x), y0, forward)
    return _attach(traceable(x), sol)


def argmax_batch(f, x, y0, *, solver="dense", tol=1e-6, certify=True, forward=None):
    """:func:`argmin_batch` with ``mode="max"``: each ``H_b`` negative definite."""
    return argmin_batch(
        f, x, y0, mode="max", solver=solver, tol=tol, certify=certify, forward=forward
    )


# --- input checks ------------------------------------------------------------------------


def _problems(idx, B, also="also fail"):
    """``" (k other problems of the B also fail: 3, 9, 12, ...)"`` after the first of
    ``idx``, or that it is the only one."""
    rest = [int(i) for i in idx[1:]]
    if not rest:
        return f" (the only one of the {B} problems)"
    first = ", ".join(map(str, rest[:5])) + (", ..." if len(rest) > 5 else "")
    return f" ({len(rest)} other problem{'s' * (len(rest) > 1)} of the {B} {also}: {first})"


def _named(err, idx):
    """``err`` with the failing problems' indices as ``err.problems``."""
    err.problems = onp.asarray(idx, dtype=int)
    return err


def _rows(bad):
    return onp.flatnonzero(onp.asarray(bad).reshape(len(bad), -1).any(axis=1))


def _check_y0(y0):
    try:
        v = onp.asarray(plain(y0))  # (a traced y0: only its value is a start)
    except (ValueError, TypeError):
        raise ShapeError("y0 is a ragged sequence; pass an array of shape (B, n)") from None
    if v.ndim != 2 or 0 in v.shape:
        raise ShapeError(
            f"y0 has shape {v.shape}; argmin_batch needs y0 of shape (B, n), one row per "
            "problem (B >= 1 problems of n >= 1 unknowns; for one scalar unknown per problem "
            "pass y0[:, None])."
        )
    if v.dtype.kind in "fiub":
        bad = _rows(~onp.isfinite(v.astype(float)))
        if bad.size:
            raise _named(
                NonFiniteError(
                    f"y0 contains NaN or inf in problem {bad[0]}{_problems(bad, len(v))}; "
                    "pass finite starts."
                ),
                bad,
            )
    return check_x(v, "y0")


def _literal(v):
    """A (nested) list or tuple of numbers only: an array written out, not a container."""
    if isinstance(v, (list, tuple)):
        return len(v) > 0 and all(_literal(e) for e in v)
    return isinstance(v, numbers.Number)


def _arrays(x):
    """``x`` with every array literal (nested lists of numbers) made an array."""
    if isinstance(x, (list, tuple)) and not is_traced(x) and _literal(x):
        try:
            return onp.array(x, dtype=float)
        except ValueError:
            raise ShapeError("x is a ragged sequence; pass an array of shape (B, ...)") from None
    if isinstance(x, dict):
        return {k: _arrays(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_arrays(v) for v in x)
    return x


def _leaves(x, name="x"):
    """``(name, leaf)`` of every array of the (plain) container ``x``."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _leaves(v, f"{name}[{k!r}]")
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            yield from _leaves(v, f"{name}[{i}]")
    else:
        yield name, x


def _check_x(x, B):
    """``x`` as floats (traced leaves kept), every leaf with leading axis ``B``, finite."""
    x = _arrays(x)
    for name, leaf in _leaves(plain(x)):
        a = onp.asarray(leaf)
        if a.dtype.kind not in "fiub":
            continue  # (check_x says what is wrong with it)
        if a.ndim == 0 or a.shape[0] != B:
            raise ShapeError(
                f"{name} has shape {a.shape}, but y0 has B = {B} rows: every array of x needs "
                f"a leading axis of length B (row b for problem b); pass a parameter shared "
                f"by all problems broadcast, e.g. value * numpy.ones({B})."
            )
        bad = _rows(~onp.isfinite(a.astype(float)))
        if bad.size:
            raise _named(
                NonFiniteError(
                    f"{name} contains NaN or inf in problem {bad[0]}{_problems(bad, B)}; pass "
                    "finite values."
                ),
                bad,
            )
    return check_x(x)


def _solver(solver):
    """``("dense" | "cg", rtol, maxiter)`` from a name or a Dense/CG instance."""
    if isinstance(solver, str) and solver in ("dense", "cg"):
        return solver, 1e-10, None
    if isinstance(solver, Dense):
        return "dense", 1e-10, None
    if isinstance(solver, CG) and solver.preconditioner in (None, "auto"):
        return "cg", solver.rtol, solver.maxiter
    raise InputError(
        f"solver={solver!r}: argmin_batch solves with 'dense' (stacked Cholesky) or 'cg' "
        "(block-diagonal conjugate gradients, argminlib.CG(rtol=, maxiter=) without a "
        "preconditioner); solve problems one by one with argminlib.argmin for the others."
    )


# --- the one mechanism: block-diagonal products of the summed objective ------------------


class _Point:
    """The batch linearised at the numeric ``(x, y)``: one joint trace of the stacked
    gradient ``G(x, y) = F_Y`` (``(B, n)``), whose backward pass with ``W`` gives both
    ``W^T dG/dx`` (a mixed product, the VJP's ``x`` part) and ``H W`` (``H`` symmetric:
    the block-diagonal Hessian-vector product, every problem at once)."""

    def __init__(self, batch, x, y):
        self.batch, self.x, self.y, value = batch, x, y, []
        self.back, g = make_vjp(lambda xy: batch.G(xy[0], xy[1], value))(atuple((x, y)))
        self.value, self.g = onp.asarray(value[0], dtype=float), onp.asarray(g, dtype=float)
        for what, a in (("f(x, y)", self.value), ("The gradient of f in y", self.g)):
            bad = _rows(~onp.isfinite(a))
            if bad.size:
                raise _named(
                    NonFiniteError(
                        f"{what} is NaN or inf in problem {bad[0]}{_problems(bad, batch.B)}: "
                        "check f and that y (or the start y0) is in its domain there."
                    ),
                    bad,
                )
        self._H = self._factor = self._probes = None

    def hvp(self, V):
        """``H V``: the product with every block ``H_b V_b`` at once."""
        return onp.asarray(self.back(V)[1], dtype=float)

    def x_vjp(self, W):
        """``W^T dG/dx``, with the structure of ``x``."""
        return self.back(W)[0]

    def hessians(self):
        """The ``B`` blocks ``(B, n, n)`` from ``n`` products: direction ``e_j`` in every
        block gives column ``j`` of every block."""
        if self._H is None:
            B, n = self.y.shape
            E = onp.zeros((B, n))
            cols, xcols = [], []
            for j in range(n):
                E[:, j] = 1.0
                xj, hj = self.back(E)
                E[:, j] = 0.0
                cols.append(onp.asarray(hj, dtype=float))
                xcols.append(xj)
            H = onp.stack(cols, axis=1)  # (row j = column j: H_b is symmetric)
            self._H = 0.5 * (H + onp.swapaxes(H, 1, 2))
            self._probes = H, xcols  # (the products as computed: the coupling check's)
        return self._H

    def factor(self):
        """``(d, S, L)`` with ``S = sign D H D = L L^T`` (:func:`_equilibrated`), all blocks
        in one stacked Cholesky; ``L = None`` if a block is not definite of the sign."""
        if self._factor is None:
            d, S = _equilibrated(self.hessians())
            S = S if self.batch.sign > 0 else -S
            try:
                self._factor = d, S, onp.linalg.cholesky(S)
            except onp.linalg.LinAlgError:
                self._factor = d, S, None
        return self._factor

    def dense_solve(self, b):
        """``H^{-1} b = sign D (sign D H D)^{-1} D b`` for every block: by the Cholesky
        factor, or (a block of the other sign, while polishing or with ``certify=False``)
        by LU; ``None`` if a block is exactly singular."""
        d, S, L = self.factor()
        if L is not None:
            return self.batch.sign * d * _cho_solve(L, d * b)
        try:
            return self.batch.sign * d * onp.linalg.solve(S, (d * b)[:, :, None])[:, :, 0]
        except onp.linalg.LinAlgError:
            return None


def _equilibrated(H):
    """``(d, D H D)`` for every block (``d``: ``(B, n)``): :func:`argminlib.certify.equilibrated`
    block by block (the same scaling and basis: a congruence keeps the inertia, and a
    factorised solve's accuracy depends on ``cond(D H_b D)``, not on ``cond(H_b)``)."""
    d = _equilibration(H)
    return d, (d[:, :, None] * d[:, None, :]) * H


def _cho_solve(L, b):
    """``(L L^T)^{-1} b`` for stacked lower-triangular ``L`` (``(B, n, n)``) and ``b``
    (``(B, n)``): forward and back substitution, each step vectorised over the batch."""
    n = b.shape[1]
    z = onp.empty_like(b)
    for i in range(n):
        z[:, i] = (b[:, i] - onp.einsum("bj,bj->b", L[:, i, :i], z[:, :i])) / L[:, i, i]
    for i in reversed(range(n)):
        z[:, i] = (z[:, i] - onp.einsum("bj,bj->b", L[:, i + 1 :, i], z[:, i + 1 :])) / L[:, i, i]
    return z


def _rowdot(a, b):
    return onp.einsum("bi,bi->b", a, b)


def _rownorm(a):
    return onp.sqrt(_rowdot(a, a))


def _block_cg(hvp, b, sign, rtol, maxiter, x0=None, lam=None, modified=False):
    """``w_b = H_b^{-1} b_b`` for every problem by one block-diagonal CG iteration: CG on
    ``sign H`` (definite), stacked ``(B, n)`` vectors, one product ``_Point.hvp`` per
    iteration for all problems, each problem with its own ``alpha_b``, ``beta_b`` and
    convergence test; a converged problem stops changing (its direction is zero).

    Problem ``b`` has converged when ``||r_b|| <= rtol ||b_b||`` and, given a lower bound
    ``lam_b`` on its curvature (the certificate's), when the bound ``||r_b|| / (lam_b
    ||w_b||)`` on its relative error is at most ``max(1e-6, 10 rtol)`` (the accuracy
    :class:`argminlib.CG` certifies). Returns ``(w, status)``, ``status_b`` 0 (converged), 1
    (``maxiter`` reached) or 2 (a direction of the wrong curvature: stopped; with
    ``modified``, for a Newton direction, a first such direction ``p`` gives ``w = p
    |p^T r / p^T H p|``, a step of the size of the curvature's absolute value)."""
    w = onp.zeros_like(b) if x0 is None else x0.copy()
    r = sign * b - (sign * hvp(w) if x0 is not None else 0.0)
    p, rr = r.copy(), _rowdot(r, r)
    tol = rtol * _rownorm(b)
    accuracy = max(1e-6, 10 * rtol)
    status = onp.zeros(len(b), dtype=int)
    active = onp.sqrt(rr) > tol
    for k in range(maxiter):
        if not active.any():
            break
        q = sign * hvp(p)
        pq = _rowdot(p, q)
        wrong = active & ~(pq > 0)
        if wrong.any():
            status[wrong] = 2
            active &= ~wrong
            if modified and k == 0:
                w[wrong] = p[wrong] * (rr[wrong] / onp.maximum(abs(pq[wrong]), 1e-300))[:, None]
        alpha = onp.where(active, rr / onp.where(active, pq, 1.0), 0.0)
        w += alpha[:, None] * p
        r -= alpha[:, None] * q
        rr_new = _rowdot(r, r)
        done = onp.sqrt(rr_new) <= tol
        if lam is not None:
            done &= onp.sqrt(rr_new) <= accuracy * lam * _rownorm(w)
        active &= ~done
        beta = onp.where(active, rr_new / onp.where(rr > 0, rr, 1.0), 0.0)
        p = onp.where(active[:, None], r + beta[:, None] * p, 0.0)
        rr = rr_new
    status[active] = 1
    return w, status


# --- the batch of problems ----------------------------------------------------------------


class _Batch:
    """The ``B`` problems: ``f``, the claimed sign of the curvature, the solver and the
    certificate; products through :class:`_Point`."""

    def __init__(self, f, shape, sign, solver, tol, config):
        self.f, (self.B, self.n), self.sign, self.tol, self.config = f, shape, sign, tol, config
        self.kind, self.rtol, maxiter = _solver(solver)
        self.maxiter = 10 * self.n + 50 if maxiter is None else maxiter
        self.name = "minimum" if sign > 0 else "maximum"

    def G(self, x, y, value=None):
        """``F_Y(x, y) = (df/dy)^T 1``: the gradient of ``sum_b f_b`` in ``y``, ``(B, n)``,
        row ``b`` that of ``f_b`` (the VJP of ``f`` with ones); traceable. ``value``: a
        list to append ``f(x, y)`` to."""
        vjp, v = make_vjp(lambda y_: self.f(x, y_))(y)
        self._check_shape(onp.shape(v))
        if value is not None:
            value.append(getval(v))
        return vjp(onp.ones(self.B))

    def _check_shape(self, shape, where="y"):
        if shape != (self.B,):
            fix = {(): " (do not sum over the batch)", (self.B, 1): " (e.g. index [:, 0])"}
            raise ShapeError(
                f"f(x, {where}) returned shape {shape}; argmin_batch expects shape "
                f"({self.B},), one objective per problem{fix.get(shape, '')}."
            )

    def values(self, x, y):
        """``f(x, y)`` (plain), checked to be ``(B,)``."""
        v = call_user(self.f, x, y, "f")
        self._check_shape(v.shape)
        return v

    def point(self, x, y, where="y"):
        """The :class:`_Point` at ``(x, y)``; an error inside ``f`` explained as
        :func:`argminlib.partials.call_user` does."""
        try:
            return _Point(self, x, y)
        except ArgminError:
            raise
        except (ValueError, TypeError, IndexError, AttributeError):
            call_user(self.f, x, y, "f", where)  # (the plain call's error, explained)
            raise

    # -- solving ------------------------------------------------------------------------

    def solve(self, x, y0, forward):
        """Forward solve, coupling check, polish, certificate and acceptance test: the
        :class:`_Solved` batch, or an error naming the problems."""
        if forward is None:
            pt, size = self.newton(x, y0)
            _coupling(pt)
            self._not_stationary(pt, size, forward)
            return _Solved(pt, self.certify(pt))
        # a user's answer: certified as it is (a saddle, a singular block is named as
        # such), then polished; the accepted point is certified again if it moved
        pt = self.point(x, self._forward_output(forward(self.f, x, y0)))
        _coupling(pt)
        lam = self.certify(pt)
        accepted, size = self.polish(pt, lam)
        if accepted is not pt:
            pt, lam = accepted, self.certify(accepted)
        self._not_stationary(pt, size, forward)
        return _Solved(pt, lam)

    def _not_stationary(self, pt, size, forward):
        """The acceptance test: raise naming the problems whose Newton step (``size``, its
        largest entry) exceeds ``tol * max(1, |y_b|)``."""
        scale = onp.maximum(1.0, onp.max(onp.abs(pt.y), axis=1))
        bad = onp.flatnonzero(~(size <= self.tol * scale))
        if not bad.size:
            return
        b = bad[0]
        found = (
            f"The forward solver's answer is not a solution in problem {b}"
            f"{_problems(bad, self.B)}, even after {POLISH} Newton steps"
            if forward is not None
            else f"The batched Newton solve (the default forward solver) did not converge "
            f"in problem {b}{_problems(bad, self.B)} in {NEWTON_STEPS} iterations"
        )
        step = (
            f"its Newton step has length {size[b]:.3e} > tol * max(1, |y[{b}]|) = "
            f"{self.tol * scale[b]:.1e} (a scale-free measure)"
            if onp.isfinite(size[b])
            else "no Newton step could be computed there (CG met curvature of the wrong sign "
            "or the Hessian block is singular)"
        )
        advice = (
            "Pass a better forward solver or start (y0)"
            if forward is not None
            else f"f_b may have no {self.name} from this start (unbounded, or not smooth): "
            "pass a better start (y0) or your own forward solver"
        )
        raise _named(
            ForwardSolveError(
                f"{found}: {step}. {advice}, or raise tol if this accuracy is what you want."
            ),
            bad,
        )

    def _forward_output(self, y):
        try:
            a = onp.asarray(plain(y), dtype=float)
        except (ValueError, TypeError):
            raise ShapeError(
                f"The forward solver returned {type(y).__name__}; it must return an array "
                f"of shape ({self.B}, {self.n})."
            ) from None
        if a.shape != (self.B, self.n):
            raise ShapeError(
                f"The forward solver returned shape {a.shape}; y0 has shape ({self.B}, {self.n})."
            )
        bad = _rows(~onp.isfinite(a))
        if bad.size:
            raise _named(
                ForwardSolveError(
                    f"The forward solver returned NaN or inf in problem {bad[0]}"
                    f"{_problems(bad, self.B)}."
                ),
                bad,
            )
        return a

    def step(self, pt, modified=False, lam=None):
        """The Newton step ``-H_b^{-1} g_b`` of every problem, ``(B, n)``, and the mask of
        the problems where it was computed. ``modified`` (the forward solve): a block of
        the wrong curvature gets ``-|H_b|^{-1} g_b`` instead (the absolute values of its
        eigenvalues, floored at ``1e-8`` of the largest; Gill-Murray), a descent
        direction for ``sign f_b``; with CG, the step of ``_block_cg``'s ``modified``.
        ``lam``: the certificate's lower bounds on the curvature, which bound each step by
        ``|g_b| / lam_b``; with CG, a problem whose bound is below ``min(tol, NEGLIGIBLE)
        max(1, |y_b|)`` is not solved for (its step is returned as zero: not taken)."""
        if self.kind == "cg":
            b = -pt.g
            if lam is not None:
                bound = _rownorm(pt.g) / onp.where(lam > 0, lam, onp.nan)
                scale = onp.maximum(1.0, onp.max(onp.abs(pt.y), axis=1))
                b = onp.where((bound <= min(self.tol, NEGLIGIBLE) * scale)[:, None], 0.0, b)
            w, status = _block_cg(pt.hvp, b, self.sign, self.rtol, self.maxiter, modified=modified)
            return w, (status != 2) | modified
        d, S, L = pt.factor()
        if L is not None or not modified:
            w = pt.dense_solve(-pt.g)
            ok = onp.full(self.B, w is not None)
            return (onp.zeros_like(pt.g) if w is None else w), ok
        lam, Q = onp.linalg.eigh(S)  # (sign S: the curvature claimed is positive)
        lam = onp.maximum(onp.abs(lam), 1e-8 * onp.max(onp.abs(lam), axis=1, keepdims=True))
        c = onp.einsum("bji,bj->bi", Q, d * pt.g) / onp.where(lam > 0, lam, 1.0)
        return -self.sign * d * onp.einsum("bij,bj->bi", Q, c), onp.ones(self.B, bool)

    def newton(self, x, y):
        """The default forward solve: Newton on the summed objective, each problem with its
        own backtracking (Armijo) line search on ``sign f_b``, until each Newton step is
        below ``NEGLIGIBLE * max(1, |y_b|)`` (not taken); a problem that has converged
        stops changing. Returns the :class:`_Point` of the answer and the step sizes."""
        sign, B = self.sign, self.B
        moving = onp.ones(B, bool)
        for k in range(NEWTON_STEPS):
            pt = self.point(x, y, "y0" if k == 0 else "y")
            p, fy = self.step(pt, modified=True)[0], pt.value
            scale = onp.maximum(1.0, onp.max(onp.abs(y), axis=1))
            size = onp.max(onp.abs(p), axis=1)
            moving &= size > NEGLIGIBLE * scale
            slope = sign * _rowdot(pt.g, p)
            moving &= slope < 0
            if not moving.any():
                return pt, size
            t = onp.where(moving, 1.0, 0.0)
            for _ in range(40):
                trial = y + t[:, None] * p
                ft = self.values(x, trial)
                ok = onp.isfinite(ft) & (
                    sign * (ft - fy) <= 1e-4 * t * slope + 10 * EPS * onp.abs(fy)
                )
                t = onp.where(ok, t, 0.5 * t)
                if ok[moving].all():
                    break
            moving &= ok  # (a failed line search: stuck there)
            y = onp.where(moving[:, None], trial, y)
        pt = self.point(x, y)
        return pt, onp.max(onp.abs(self.step(pt, modified=True)[0]), axis=1)

    def polish(self, pt, lam=None):
        """Up to ``POLISH`` Newton steps from a user's answer, each problem while its step
        shrinks (the problems that stop keep their point). Returns the accepted point and
        its step sizes (``inf`` where no step could be computed)."""
        step, ok = self.step(pt, lam=lam)
        size = onp.where(ok, onp.max(onp.abs(step), axis=1), onp.inf)
        frozen = ~ok
        for _ in range(POLISH):
            scale = onp.maximum(1.0, onp.max(onp.abs(pt.y), axis=1))
            move = ~frozen & (size > 1e-14 * scale)
            if not move.any():
                break
            new = self.point(pt.x, onp.where(move[:, None], pt.y + step, pt.y))
            new_step, new_ok = self.step(new)
            new_size = onp.where(new_ok, onp.max(onp.abs(new_step), axis=1), onp.inf)
            better = move & (new_size < size)
            frozen |= ~better
            if not better.any():
                break
            if not onp.array_equal(better, move):  # some stop where they were
                new = self.point(pt.x, onp.where(better[:, None], new.y, pt.y))
                new_step, new_ok = self.step(new)
                new_size = onp.where(new_ok, onp.max(onp.abs(new_step), axis=1), onp.inf)
            pt, step, size = new, new_step, new_size
        return pt, size

    # -- the certificate -----------------------------------------------------------------

    def certify(self, pt):
        """Each ``H_b`` definite of the claimed sign and well conditioned; returns the
        per-problem lower bounds on the curvature (for CG's error bound) or ``None``.

        * ``"dense"``: judged on the equilibrated blocks ``D H_b D`` (the accuracy of the
          factorised solve depends on their condition; a congruence keeps the inertia):
          the stacked Cholesky of ``sign D H D`` (the solves' factor) proves definiteness,
          and a second one, of ``sign D H D - tau I`` with ``tau = max(rcond, 100 n eps)``
          times Gershgorin's bound on the largest eigenvalue, proves the condition below
          ``1 / rcond`` (Sylvester: the shifted block is definite iff every eigenvalue
          exceeds ``tau``); only if one of them fails are the exact eigenvalues of every
          block computed (one stacked ``eigvalsh``: five times the cost of a Cholesky at
          ``n = 10``) to decide and name the problems. ``Certify(method="dense")`` always
          takes the eigenvalues.
        * ``"cg"``: a batched Lanczos run on the unscaled blocks (a Krylov solve meets the
          condition of ``H_b`` itself), :func:`_lanczos`: exact when ``n <= Certify.steps``,
          else a per-problem estimate run to the Kuczyński–Woźniakowski count of steps,
          as :func:`argminlib.certify.certify` does for one problem.
          ``Certify(method="dense")`` forms the blocks instead (``n`` products)."""
        c = self.config
        if c is None:
            return None
        if self.kind == "dense" and c.method != "lanczos":
            d, S, L = pt.factor()
            if L is not None and c.method == "auto":
                ub = onp.einsum("bij->bi", onp.abs(S)).max(axis=1)  # (Gershgorin)
                i = onp.arange(self.n)
                diagonal = S[:, i, i]
                S[:, i, i] -= (max(c.rcond, max(100, self.n) * EPS) * ub)[:, None]
                try:
                    onp.linalg.cholesky(S)
                    return None
                except onp.linalg.LinAlgError:
                    pass
                finally:
                    S[:, i, i] = diagonal  # (S shifted in place, restored exactly)
            vals = self.sign * onp.linalg.eigvalsh(S)  # (of the blocks D H D)
            self._judge(vals, onp.ones(self.B, bool), c, SCALED)
            return None
        if c.method == "dense":
            vals, exact, k = onp.linalg.eigvalsh(pt.hessians()), onp.ones(self.B, bool), None
        else:
            vals, exact, k = _lanczos(pt, self.sign, c)
        lo, hi, big = self._judge(vals, exact, c, "", k)
        return onp.where(exact, lo - max(100, self.n) * EPS * big, 0.5 * lo)

    def _judge(self, vals, exact, c, how, steps=None):
        """Raise unless every problem's eigenvalues ``vals`` (``(B, m)``, exact where
        ``exact``, else Ritz values after ``steps``) are of the claimed sign with a
        condition within ``1 / rcond``; the error names the first failing problem, its
        kind and the others. Returns ``(lowest, highest, largest |.|)`` of ``sign H_b``."""
        s = self.sign
        lo, hi = onp.min(s * vals, axis=1), onp.max(s * vals, axis=1)
        big = onp.maximum(onp.max(onp.abs(vals), axis=1), onp.finfo(float).tiny)
        zero = max(100, self.n) * EPS * big
        kind = onp.select(
            [lo < -zero, lo <= zero, lo <= c.rcond * big], ["sign", "singular", "ill"], ""
        )
        bad = onp.flatnonzero(kind != "")
        if not bad.size:
            if steps is not None:
                need = _needed(lo, hi, self.n, c)
                short = onp.flatnonzero(~exact & (steps < need))
                if short.size:
                    b = short[0]
                    raise _named(
                        UncertifiedError(
                            f"The curvature of problem {short[0]}{_problems(short, self.B)} "
                            f"could not be certified in {steps[b]} Lanczos steps (Ritz "
                            f"values of sign f_YY[{b}] from {lo[b]:.3e} to {hi[b]:.3e}; about "
                            f"{need[b]} steps needed). Use solver='dense', pass "
                            f"certify=argminlib.Certify(max_steps={need[b] + 20}), or "
                            "certify=False if you know the curvature."
                        ),
                        short,
                    )
            return lo, hi, big
        order = {"sign": 0, "singular": 1, "ill": 2}
        worst = min(kind[bad], key=order.get)
        b = bad[kind[bad] == worst][0]
        others = [i for i in bad if i != b]
        also = f" It is the only one of the {self.B} problems that fails the certificate."
        if others:
            listed = ", ".join(f"{i} ({kind[i]})" for i in others[:5])
            also = (
                f" {len(others)} other problem{'s' * (len(others) > 1)} of the {self.B} also "
                f"fail the certificate: {listed}{', ...' if len(others) > 5 else ''}."
            )
        est = "" if exact[b] else f", Lanczos estimates after {steps[b]} steps"
        spectrum = f"(from {vals[b].min():.3e} to {vals[b].max():.3e}{how}{est})"
        block = f"its Hessian block f_YY[{b}]"
        want, other = self.name, ("max" if s > 0 else "min")
        if worst == "sign" and not exact[b]:
            err = CurvatureError(
                f"In problem {b} of {self.B}, y is not a strict local {want}: {block} has "
                f"curvature of the wrong sign {spectrum}; a Ritz value lies within the "
                f"spectrum, so this is proven.{also} Re-solve those problems from another "
                f"start (y0[{b}]), or check f.",
                eigenvalue=s * lo[b],
            )
        elif worst == "sign" and hi[b] > zero[b]:
            err = CurvatureError(
                f"In problem {b} of {self.B}, y is a saddle point, not a strict local {want}: "
                f"{block} has eigenvalues of both signs {spectrum}.{also} Re-solve those "
                f"problems from another start (y0[{b}]), or check f.",
                eigenvalue=s * lo[b],
            )
        elif worst == "sign":
            err = CurvatureError(
                f"In problem {b} of {self.B}, y is a local {'maximum' if s > 0 else 'minimum'}, "
                f"not a {want}: every eigenvalue of {block} is {'<= 0' if s > 0 else '>= 0'} "
                f"{spectrum}.{also} Use arg{other}_batch / mode='{other}' if that is what you "
                "want, or re-solve from another start.",
                eigenvalue=s * lo[b],
            )
        elif worst == "singular":
            err = SingularHessianError(
                f"In problem {b} of {self.B}, {block} is singular: eigenvalue "
                f"{s * lo[b]:.3e} against largest |eigenvalue| {big[b]:.3e} {spectrum}, so "
                f"y[{b}] is not a strict (isolated) {want} and its derivative is undefined."
                f"{also} Regularise the problem (e.g. add a small strongly convex term)."
            )
        else:
            err = IllConditionedError(
                f"In problem {b} of {self.B}, {block} is definite but ill-conditioned: "
                f"smallest |eigenvalue| {lo[b]:.3e} against largest {big[b]:.3e}{how}{est} "
                f"(condition about {big[b] / lo[b]:.1e} > 1/rcond = "
                f"{1 / max(c.rcond, 1e-300):.0e}); the derivative would lose about "
                f"{onp.log10(big[b] / lo[b]):.0f} digits.{also} Rescale or regularise"
                + (
                    "; solver='dense' judges the condition after scaling to a unit diagonal, "
                    "which is what its accuracy depends on"
                    if how != SCALED
                    else ""
                )
                + f"; to accept it knowingly pass certify=argminlib.Certify(rcond="
                f"{0.1 * lo[b] / big[b]:.0e})."
            )
        raise _named(err, [b] + others)


def _needed(lo, hi, n, c):
    """Each problem's Kuczyński–Woźniakowski count of Lanczos steps
    (:func:`argminlib.certify._needed_steps`; 0 where ``lo <= 0``: already decided)."""
    steps = [
        _needed_steps(a, b, n, c.confidence) if a > 0 else 0 for a, b in zip(lo, hi, strict=True)
    ]
    return onp.array(steps, dtype=int)


def _lanczos(pt, sign, c):
    """Batched Lanczos on the block-diagonal ``H``: every problem runs its own three-term
    recurrence (its own ``alpha_b``, ``beta_b``) and all share one product per step. The
    start of problem ``b`` is a random unit vector (this process's entropy, or
    ``Certify.seed``) plus its normalised gradient, as in :mod:`argminlib.certify`. With
    ``n <= Certify.steps`` it runs ``n`` steps with full reorthogonalisation: the Ritz
    values are the exact eigenvalues; otherwise (the two previous vectors only) at least
    ``steps`` and up to ``max_steps``, each problem stopping once a Ritz value of the wrong
    sign proves it indefinite or the Kuczyński–Woźniakowski count for its Ritz values is
    reached. A breakdown (invariant subspace) makes that problem's values exact. Returns
    ``(Ritz values (B, k), exact (B,), steps (B,))``; the unused steps of a problem that
    stopped are padded with its first ``alpha`` (inside its Ritz interval)."""
    B, n = pt.y.shape
    full = n <= c.steps
    kmax, k0 = (n, n) if full else (min(c.max_steps, n), c.steps)
    q = generator(c.seed, 1).standard_normal((B, n))
    q /= _rownorm(q)[:, None]
    gn = _rownorm(pt.g)
    use = (gn > 0) & onp.isfinite(gn)
    q = q + onp.where(use[:, None], pt.g / onp.where(use, gn, 1.0)[:, None], 0.0)
    q /= _rownorm(q)[:, None]
    alphas, betas, Q = onp.zeros((kmax, B)), onp.zeros((kmax, B)), [q]
    q_prev, b_prev = onp.zeros_like(q), onp.zeros(B)
    steps, active, exact = onp.zeros(B, int), onp.ones(B, bool), onp.full(B, full)
    scale = onp.zeros(B)

    def ritz():  # each problem's tridiagonal T_b, padded to the longest run
        k = int(steps.max())
        i = onp.arange(k)
        T = onp.zeros((B, k, k))
        T[:, i, i] = onp.where(i < steps[:, None], alphas[:k].T, alphas[0][:, None])
        T[:, i[:-1], i[1:]] = T[:, i[1:], i[:-1]] = betas[: k - 1].T
        return onp.linalg.eigvalsh(T)

    for j in range(kmax):
        w = pt.hvp(q)
        a = _rowdot(q, w)
        if not onp.all(onp.isfinite(a[active])):
            bad = onp.flatnonzero(active & ~onp.isfinite(a))
            raise _named(
                NonFiniteError(
                    f"The Hessian of f gives NaN or inf products in problem {bad[0]}"
                    f"{_problems(bad, B)} (Lanczos step {j + 1}); check f's second "
                    "derivatives at y."
                ),
                bad,
            )
        alphas[j] = onp.where(active, a, 0.0)
        steps += active
        if not full and j + 1 >= k0 and (j + 1 - k0) % 5 == 0:
            vals = sign * ritz()
            lo, hi = vals.min(axis=1), vals.max(axis=1)
            need = _needed(lo, hi, n, c)
            active &= (lo > 0) & (steps < need)
        if j == kmax - 1 or not active.any():
            break
        w = w - a[:, None] * q - b_prev[:, None] * q_prev
        for _ in range(2):  # Gram-Schmidt twice: all previous vectors, or the last two
            for v in Q if full else (q, q_prev):
                w -= _rowdot(v, w)[:, None] * v
        bj = _rownorm(w)
        scale = onp.maximum(scale, onp.maximum(abs(a), bj))
        broke = active & (bj <= 1e-10 * onp.maximum(scale, onp.finfo(float).tiny))
        exact |= broke
        active &= ~broke
        betas[j] = onp.where(active, bj, 0.0)
        q_prev, q = q, onp.where(active[:, None], w / onp.where(active, bj, 1.0)[:, None], 0.0)
        b_prev = betas[j]
        if full:
            Q.append(q)
    return ritz(), exact, steps


def _coupling(pt, stream=11):
    """Raise :class:`~argminlib.InputError` naming the problems if ``f`` couples them.

    One joint product at ``(x, y)`` with a random ``V`` (this process's entropy), compared
    with what the block-diagonal structure predicts from products already made. With the
    dense blocks (``n`` products with ``E_j``, ``e_j`` in every block): if row ``b`` of
    ``H`` reaches another block, ``H_bc != 0``, then ``(H V)_b - sum_j (H E_j)_b V_bj =
    sum_c H_bc (V_c - V_b) != 0`` (with probability one), and the ``x`` part of the same
    backward pass, ``sum_b K_cb V_b`` (``K_cb = d(F_Y)_b / dx_c``), differs from ``sum_j
    V_cj (x part of E_j)_c = sum_b K_cb V_c`` where ``x_c`` enters another problem's
    optimality condition. Without them (CG): a second product with ``s V`` (row ``b``
    scaled by a random ``s_b`` in ``[1, 2)``), whose rows must be those of the first,
    scaled by ``s``. Judged beyond ``COUPLING_RTOL`` of the row's size."""
    B, n = pt.y.shape
    if B == 1:
        return
    if pt.batch.kind == "dense":
        pt.hessians()  # (needed anyway)
    V = random_vector(B * n, stream).reshape(B, n)
    xa, ya = pt.back(V)
    xa = [onp.asarray(a, dtype=float) for _, a in _leaves(xa)]
    if pt._probes is not None:
        H, xcols = pt._probes
        want_y = onp.einsum("bji,bj->bi", H, V)
        cols = [[onp.asarray(a, dtype=float) for _, a in _leaves(xc)] for xc in xcols]
        want_x = [
            sum(cols[j][k] * V[:, j].reshape((B,) + (1,) * (a.ndim - 1)) for j in range(n))
            for k, a in enumerate(xa)
        ]
    else:
        s = 1.5 + 0.5 * random_vector(B, stream + 1)
        xb, yb = pt.back(s[:, None] * V)
        want_y, ya = s[:, None] * onp.asarray(ya), yb
        want_x = [s.reshape((B,) + (1,) * (a.ndim - 1)) * a for a in xa]
        xa = [onp.asarray(a, dtype=float) for _, a in _leaves(xb)]

    def mismatch(got, want):  # rows where got != want beyond rounding
        got = onp.asarray(got, dtype=float).reshape(B, -1)
        want = onp.asarray(want, dtype=float).reshape(B, -1)
        size = onp.maximum(onp.max(onp.abs(got), axis=1), onp.max(onp.abs(want), axis=1))
        return onp.max(onp.abs(got - want), axis=1) > COUPLING_RTOL * size

    rows_y = onp.flatnonzero(mismatch(ya, want_y))
    rows_x = onp.zeros(B, bool)
    for got, want in zip(xa, want_x, strict=True):
        if got.ndim:
            rows_x |= mismatch(got, want)
    rows_x = onp.flatnonzero(rows_x)
    if not (rows_y.size or rows_x.size):
        return
    what = []
    if rows_y.size:
        what.append(
            f"the gradient of problem {rows_y[0]}{_problems(rows_y, B, 'too')} depends on "
            "other problems' y (the Hessian of sum(f) is not block diagonal)"
        )
    if rows_x.size:
        what.append(
            f"x[{rows_x[0]}]{_problems(rows_x, B, 'too')} enters other problems' optimality "
            "conditions (the mixed derivative f_YX is not block diagonal)"
        )
    raise _named(
        InputError(
            "f couples the problems of the batch: "
            + "; and ".join(what)
            + ". argmin_batch solves B independent problems, f(x, y)[b] depending only on "
            "x[b] and y[b]: write f without sums, means or other operations across the "
            "batch axis, or solve the coupled problem as one with argminlib.argmin."
        ),
        onp.union1d(rows_y, rows_x),
    )


# --- the accepted solution: derivatives ----------------------------------------------------


class _Solved:
    """The accepted, certified batch solution: the operator of :func:`linear_solve` (the
    block-diagonal ``H(x, y)``, symmetric) and the solution of the primitive ``_attach``
    (``z``, ``vjp``, ``jvp``), as :class:`argminlib.Solution` is for one problem."""

    def __init__(self, pt, lam):
        self.pt, self.batch, self.lam = pt, pt.batch, lam
        self.x, self.z = pt.x, pt.y
        self.T = self  # H_b is symmetric

    def solve(self, b):
        """``H^{-1} b`` block by block (numeric): one stacked Cholesky back-substitution, or
        block CG restarted from its answer while the true residual is off (at most twice)."""
        bt, pt = self.batch, self.pt
        if bt.kind == "dense":
            w = pt.dense_solve(b)
            if w is None:
                raise LinearSolveError(
                    "A Hessian block is singular (certify=False): the derivative is undefined "
                    "there; certify to name the problem."
                )
            return w
        w = None
        for _ in range(3):
            w, status = _block_cg(pt.hvp, b, bt.sign, bt.rtol, bt.maxiter, w, self.lam)
            r = _rownorm(b - pt.hvp(w))  # the true residual: judged by the error bound
            if self.lam is None:
                off = r > 10 * bt.rtol * _rownorm(b)
            else:
                off = r > 10 * max(1e-6, 10 * bt.rtol) * self.lam * _rownorm(w)
            if not (off | (status == 2)).any():
                return w
        bad = onp.flatnonzero(off | (status != 0))
        raise _named(
            LinearSolveError(
                f"Block CG did not solve problem {bad[0]}{_problems(bad, bt.B)} within "
                f"{bt.maxiter} iterations to rtol = {bt.rtol:.0e} (true residual "
                f"{r[bad[0]]:.1e} against |b| = {_rownorm(b)[bad[0]]:.1e}"
                + (", a direction of the wrong curvature)" if status[bad[0]] == 2 else ")")
                + ". Raise maxiter (argminlib.CG(maxiter=...)), or use solver='dense'."
            ),
            bad,
        )

    def apply(self, x, z, w):
        """``H(x, z) w``, traceable in all three (the derivative of the solve)."""
        return make_vjp(lambda z_: self.batch.G(x, z_))(z)[0](w)

    def _x_vjp(self, x, z):
        if not is_traced((x, z)):
            return self.pt.x_vjp  # the joint trace at the solution
        return make_vjp(lambda x_: self.batch.G(x_, z))(x)[0]

    def vjp(self, u, x, z):
        """``xbar = -(d/dx)[F_Y(x, z) . w]``, ``w_b = H_b^{-1} u_b``; traceable."""
        x = traceable(x)
        w = linear_solve(atuple((u, x, z)), self)
        return self._x_vjp(x, z)(-w)

    def jvp(self, v, x, z):
        """``dy = -H^{-1} (dF_Y/dx) v``: one block solve (the mixed product by reverse over
        reverse, ``J v = d/dw <J^T w, v>``)."""
        vjp, vs = self._x_vjp(x, z), vspace(v)
        Jv = grad(lambda w: vs.inner_prod(vjp(w), v))(onp.zeros(onp.shape(self.z)))
        return linear_solve(atuple((-Jv, x, z)), self)
