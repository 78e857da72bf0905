"""The contract every problem class keeps, and the checks of user input.

A :class:`Problem` knows how to find a solution for a parameter ``x`` (its ``forward``
solver) and how to state its optimality conditions at a solution ``y``
(:meth:`Problem.complete`: the flat unknowns ``z``, possibly with multipliers, and the
optimality function ``F``). Everything else is shared:

* :meth:`Problem.solution` linearises ``F`` once, certifies the second-order conditions
  (:mod:`argminlib.certify`), polishes ``z`` with at most ``polish`` Newton steps, and
  accepts it when the Newton step is at most ``tol * max(1, |y|)`` (a scale-free test);
* calling the problem with ``x`` solves it and returns ``y`` through the autograd primitive
  of :class:`~argminlib.implicit.Solution`;
* :meth:`jacobian`, :meth:`jvp` and :meth:`vjp` differentiate at a known solution ``y``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import autograd.numpy as anp
import numpy as onp
from autograd.misc import flatten
from autograd.tracer import getval, isbox

from .certify import as_certify
from .exceptions import (
    ForwardSolveError,
    InputError,
    NonFiniteError,
    NotStationaryError,
    ShapeError,
)
from .implicit import Solution, check_step, is_traced, plain
from .implicit import polish as polish_solution
from .linsolve import get_solver

__all__ = [
    "Problem",
    "ArgminInfo",
    "Conditions",
    "as_float_array",
    "check_x",
    "check_tol",
    "mode_sign",
]

SIGNS = {"min": 1, "max": -1, "stationary": 0}


def mode_sign(mode):
    """``"min"`` -> +1, ``"max"`` -> -1, ``"stationary"`` -> 0."""
    try:
        return SIGNS[mode]
    except (KeyError, TypeError):
        raise InputError(f"mode={mode!r}: use 'min', 'max' or 'stationary'") from None


def check_tol(tol, name="tol"):
    if not (isinstance(tol, numbers.Real) and not isinstance(tol, bool) and 0 < tol < onp.inf):
        raise InputError(f"{name}={tol!r}: use a finite positive number")
    return float(tol)


def as_float_array(a, name):
    """``a`` (a number, list, tuple or array; possibly an autograd box) as floats: integers
    are converted, complex and non-numeric values refused, NaN and inf refused."""
    v = getval(a)
    if isinstance(v, (list, tuple)):
        try:
            v = onp.array(plain(v))
        except (ValueError, TypeError):
            raise ShapeError(f"{name} is a ragged sequence; pass an array") from None
        a = v
    arr = onp.asarray(v)
    if onp.iscomplexobj(arr):
        raise InputError(f"{name} is complex; argminlib works with real floats only.")
    if arr.dtype == object or arr.dtype.kind not in "fiub":
        raise InputError(f"{name} must be a real number or array, not {type(v).__name__}")
    if arr.dtype.kind != "f":
        a = arr.astype(float) if arr.ndim else float(arr)
    if not onp.all(onp.isfinite(arr.astype(float))):
        bad = int(onp.sum(~onp.isfinite(arr.astype(float))))
        raise NonFiniteError(
            f"{name} contains NaN or inf ({bad} of {arr.size} entries); pass finite values."
        )
    return a


def _is_container_of_arrays(x):
    """A dict, or a list/tuple that is not a plain array literal: it holds arrays, other
    containers, or values autograd is tracing (a tuple of traced scalars must stay a
    container: turning it into an array would drop the trace)."""
    v = getval(x)
    if isinstance(v, dict):
        return True
    if isinstance(v, (list, tuple)):
        return any(
            is_traced(e) or isinstance(getval(e), (dict, list, tuple)) or onp.ndim(getval(e)) > 0
            for e in v
        )
    return False


def check_x(x, name="x"):
    """The parameter: a number or array (converted to floats), or a container (tuple, list,
    dict, nested) of them, whose leaves are checked the same way. Traced leaves are kept."""
    if is_traced(x):
        v = getval(x)
        if not isinstance(v, (dict, list, tuple)):
            as_float_array(x, name)  # a traced array: its value is checked
            return x
    if _is_container_of_arrays(x) or (is_traced(x) and isinstance(getval(x), (dict, list, tuple))):
        v = x if isinstance(x, (dict, list, tuple)) else getval(x)
        items = v.items() if isinstance(v, dict) else enumerate(v)
        out = {k: check_x(e, f"{name}[{k!r}]") for k, e in items}
        if isbox(x):  # a container autograd is tracing as a whole: leave it as it is
            return x
        return out if isinstance(v, dict) else type(v)(out[i] for i in range(len(v)))
    return as_float_array(x, name)


class ArgminInfo:
    """What :func:`~argminlib.argmin` found at its solution, read without re-solving or
    re-certifying: a live view of the :class:`~argminlib.Solution` that the
    primitive's derivatives use, so it is filled in when ``grad`` (or ``jvp``,
    ``jacobian``) runs through the returned ``y``, also after that ``y`` went out of scope.

    ``certificate``: the :class:`~argminlib.Certificate` of the second-order conditions
    (``None`` with ``certify=False``); ``solves``: the :class:`~argminlib.SolveInfo` of the
    derivative solves so far, merged (``solves.solves == 0`` before any derivative;
    ``solves.error``, the relative error bound of a Krylov solve, ``solves.iterations``,
    ``solves.residual``)."""

    def __init__(self, solution):
        self._solution = solution

    @property
    def certificate(self):
        return self._solution.certificate

    @property
    def solves(self):
        return self._solution.info()

    def __repr__(self):
        s = self.solves
        return (
            f"ArgminInfo(solves={s.solves}, method={s.method!r}, iterations={s.iterations}, "
            f"residual={s.residual:.1e}, error={s.error}, certificate={self.certificate!r})"
        )


@dataclass
class Conditions:
    """What :meth:`Problem.complete` returns: the flat unknowns ``z`` (``y`` then any
    multipliers), the optimality function ``F(x, z)`` and the number of multipliers
    (``kkt_rows``; ``dF/dz`` is then a KKT matrix)."""

    z: onp.ndarray
    F: object
    kkt_rows: int = 0


class Problem:
    """Base class of the problem classes (unconstrained, equality, inequality, barrier).

    Subclasses set ``yshape``, ``sign`` (+1 min, -1 max, 0 stationary), ``solver``,
    ``tol``, ``config`` (certification), ``polish`` (Newton steps allowed after the forward
    solver), ``matrix_name`` (what ``dF/dz`` is called in messages) and ``conditions`` (the
    optimality conditions, in words, for messages), and
    implement ``forward(x) -> y`` (or ``(y, multipliers)``) and ``complete(x, y, z=None) ->
    Conditions``.
    """

    symmetric = True
    hessian = None  # the user's hess/hessp/hess_sparsity (argminlib.hessian.UserHessian)
    matrix_name = "Jacobian of the optimality conditions"
    conditions = "the optimality conditions"
    polish = 5

    def setup(self, y0, mode, solver, tol, certify, warm_start=False):
        forward = getattr(self, "forward_solver", None)
        if forward is not None and not callable(forward):
            raise InputError(
                f"forward={forward!r}: pass a function forward(f, x, y0) -> y (or None for "
                "the default solver)."
            )
        self.mode = mode
        self.sign = mode_sign(mode)
        self.y0 = as_float_array(y0, "y0")
        self.yshape = onp.shape(self.y0)
        self.ny = int(onp.prod(self.yshape)) if self.yshape else 1
        self.solver = get_solver(solver)
        self.tol = check_tol(tol)
        self.config = as_certify(certify)
        if not isinstance(warm_start, bool):
            raise InputError(f"warm_start={warm_start!r}: use True or False")
        self.warm_start, self.last, self.candidate = warm_start, None, None

    @property
    def start(self):
        """The point the forward solver starts from, ``y0``, or with ``warm_start=True``
        the last solution this problem accepted (``last``). A warm start only saves forward work:
        the answer is polished and certified as from any start; but on a problem with
        several minima it follows the branch of the last solution, not ``y0``'s."""
        return self.last if (self.warm_start and self.last is not None) else self.y0

    # -- to be provided by subclasses -----------------------------------------------

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def complete(self, x, y, multipliers=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def check_solution(self, x, y):
        """Extra checks of a solution (feasibility of constraints); default none."""

    # -- shared machinery -----------------------------------------------------------

    def primal(self, z):
        """``y`` (shaped) from the flat ``z``; traceable by autograd."""
        y = z[: self.ny]
        return y[0] if self.yshape == () else anp.reshape(y, self.yshape)

    def _solution(self, x, cond, deferred=False):
        return Solution(
            cond.F,
            x,
            cond.z,
            symmetric=self.symmetric,
            sign=self.sign,
            kkt_rows=cond.kkt_rows,
            solver=self.solver,
            certify=self.config if self.config is not None else False,
            name=self.matrix_name,
            hessian=self.hessian,
            deferred=deferred,
        )

    def solution(self, x, cond, polish=0):
        """Linearise and certify at ``cond.z``; take up to ``polish`` Newton steps while the
        step shrinks; accept if the step is at most ``tol * max(1, |y|)``."""
        sol, size = polish_solution(
            lambda z, deferred: self._solution(x, Conditions(z, cond.F, cond.kkt_rows), deferred),
            cond.z,
            polish,
            self.ny,
            self.tol,
        )
        check_step(size, sol.z, self.tol, self.conditions, self.ny)
        y = onp.reshape(sol.z[: self.ny], self.yshape)
        self.check_solution(x, y)
        self.last = onp.array(y, dtype=float)
        return sol

    def solve(self, x):
        """Solve at ``x`` (forward solver, then Newton polish and certification): a
        :class:`~argminlib.implicit.Solution`."""
        xv = plain(x)
        return self.accept(xv, self.forward(xv))

    def accept(self, xv, out):
        """The certified :class:`~argminlib.implicit.Solution` from a forward solver's
        output ``out`` (``y``, or ``(y, multipliers)``) at the plain ``xv``: polished by at
        most ``polish`` Newton steps, accepted or refused."""
        y, mult = out if isinstance(out, tuple) and len(out) == 2 else (out, None)
        y = self._check_forward_output(y)
        self.candidate = y  # (the answer being judged, for a diagnosis if it is refused)
        cond = self.complete(xv, y, mult, feasible=False)
        try:
            return self.solution(xv, cond, polish=self.polish)
        except NotStationaryError as err:
            raise ForwardSolveError(
                f"The forward solver's answer is not a solution, even after {self.polish} "
                f"Newton steps: {err} Pass a better forward solver or start (y0)."
            ) from None

    def _check_forward_output(self, y):
        v = getval(y)
        if isinstance(v, (tuple, list)) and not onp.ndim(v):
            raise ShapeError("The forward solver returned an empty sequence.")
        try:
            arr = onp.asarray(plain(v))
        except (ValueError, TypeError):
            arr = onp.asarray(None)
        if arr.dtype == object or arr.dtype.kind not in "fiu":
            raise ShapeError(
                f"The forward solver returned {type(v).__name__}; it must return y, an array "
                f"of shape {self.yshape} (or (y, multipliers) for constrained problems)."
            )
        if arr.size != self.ny:
            raise ShapeError(
                f"The forward solver returned {arr.size} values of shape {arr.shape}; y0 has "
                f"shape {self.yshape}."
            )
        arr = arr.astype(float).reshape(self.yshape)
        if not onp.all(onp.isfinite(arr)):
            raise ForwardSolveError("The forward solver returned NaN or inf.")
        return arr

    def at(self, x, y):
        """The certified :class:`~argminlib.implicit.Solution` at a given solution ``y``
        (shape, finite values, feasibility, optimality, curvature are all checked)."""
        if is_traced(y):
            raise InputError(
                "y is being differentiated: the implicit derivative treats y as the solution "
                "for x, not as an input. Differentiate through argmin (or the problem called "
                "with x) instead."
            )
        y = as_float_array(y, "y")
        if onp.shape(y) != self.yshape:
            raise ShapeError(f"y has shape {onp.shape(y)}; the problem's y has {self.yshape}.")
        self.candidate = onp.asarray(y, dtype=float)
        xv = check_x(plain(x))
        return self.solution(xv, self.complete(xv, onp.asarray(y, dtype=float)))

    def __call__(self, x, return_info=False):
        """The solution at ``x``, differentiable with autograd (any order); with
        ``return_info=True`` the pair ``(y, info)``, ``info`` an :class:`ArgminInfo` that the
        derivative passes through ``y`` fill in as they run."""
        x = check_x(x)
        sol = self.solve(x)
        y = self.primal(sol.attach(x))
        return (y, ArgminInfo(sol)) if return_info else y

    def jacobian(self, x, y, return_info=False):
        """``dy/dx`` at the solution ``y``: shape ``shape(y) + shape(x)`` (for a container
        ``x``: the same container, each leaf ``shape(y) + shape(leaf)``)."""
        sol = self.at(x, y)
        x = check_x(x)
        if is_traced(x):
            eye = onp.eye(sol.n)
            rows = [flatten(sol.vjp(eye[i], x))[0] for i in range(self.ny)]
            J = anp.stack(rows) if rows else anp.zeros((0, flatten(plain(x))[0].size))
        else:
            J = sol.jacobian()[: self.ny]
        out = _shape_jacobian(J, x, self.yshape)
        return (out, sol.info()) if return_info else out

    def jvp(self, x, y, v, return_info=False):
        """``(dy/dx) v`` for ``v`` of the structure of ``x``: one linear solve."""
        sol = self.at(x, y)
        x = check_x(x)
        v = check_x(v, "v")
        if (
            _structure(v) != _structure(x)
            and flatten(plain(v))[0].shape != flatten(plain(x))[0].shape
        ):
            raise ShapeError(
                f"v has {flatten(plain(v))[0].size} entries; the JVP needs the structure of "
                f"x ({flatten(plain(x))[0].size} entries)."
            )
        if _is_container_of_arrays(x) and _structure(v) != _structure(x):
            raise ShapeError(
                f"v has the structure {_structure(v)}; the JVP needs that of x, {_structure(x)}."
            )
        out = self.primal(sol.jvp(v, x))
        return (out, sol.info()) if return_info else out

    def vjp(self, x, y, u, return_info=False):
        """``u^T (dy/dx)`` for ``u`` of the shape of ``y``: the structure of ``x``; one
        linear solve whatever the size of ``x``."""
        sol = self.at(x, y)
        x = check_x(x)
        u = as_float_array(u, "u")
        if onp.shape(getval(u)) != self.yshape:
            raise ShapeError(f"u has shape {onp.shape(getval(u))}; the VJP needs {self.yshape}.")
        uz = anp.concatenate([anp.reshape(u, (-1,)), onp.zeros(sol.n - self.ny)])
        out = sol.vjp(uz, x)
        return (out, sol.info()) if return_info else out


def _structure(a):
    """The nesting and leaf shapes of ``a`` (for comparing a tangent with ``x``)."""
    v = getval(a)
    if isinstance(v, dict):
        return {k: _structure(e) for k, e in v.items()}
    if isinstance(v, (list, tuple)) and _is_container_of_arrays(v):
        return tuple(_structure(e) for e in v)
    return onp.shape(v)


def _shape_jacobian(J, x, yshape):
    """Rows of ``J`` over flat ``x`` -> ``shape(y) + shape(x)`` (per leaf for containers)."""
    xv = plain(x)
    if not _is_container_of_arrays(xv):
        xshape = onp.shape(xv)
        out = anp.reshape(J, tuple(yshape) + tuple(xshape))
        return out if anp.ndim(out) else float(getval(out))
    _, unflatten = flatten(xv)
    rows = [unflatten(J[i]) for i in range(J.shape[0])]
    return _stack_tree(rows, yshape, xv)


def _stack_tree(rows, yshape, like):
    if isinstance(like, dict):
        return {k: _stack_tree([r[k] for r in rows], yshape, like[k]) for k in like}
    if isinstance(like, (list, tuple)) and _is_container_of_arrays(like):
        return type(like)(_stack_tree([r[i] for r in rows], yshape, e) for i, e in enumerate(like))
    return anp.reshape(anp.stack([anp.asarray(r) for r in rows]), tuple(yshape) + onp.shape(like))
