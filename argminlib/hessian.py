"""Second derivatives from the user, with ``scipy.optimize``'s names.

``scipy.optimize.minimize`` takes ``hess`` and ``hessp``, ``least_squares`` takes
``jac_sparsity``; argminlib takes the same for ``f_YY``:

* ``hess(x, y)``: the Hessian over the flattened ``y``, as a dense array, a
  ``scipy.sparse`` matrix or a ``scipy.sparse.linalg.LinearOperator``;
* ``hessp(x, y, v)``: the product ``f_YY v`` (``v`` and the result of the shape of ``y``);
* ``hess_sparsity``: the pattern of nonzeros of ``f_YY`` (scipy.sparse or an array): the
  whole sparse Hessian is then recovered from one product per group of structurally
  independent columns (:class:`argminlib.sparse.HessianCompression`; the products are
  ``hessp``'s if given, autograd's otherwise).

They serve the *numeric* linear solves and the certificate only: the derivatives of the
solves (second-order derivatives through an argmin) still come from autograd, so a user's
function never sees an autograd box. At every solution where it is used, the user's Hessian
is compared with autograd's Hessian-vector products: with a
factorising solver by one product carrying the residual of one solve with a random
right-hand side and a random vector (of the process's entropy: :mod:`argminlib.randomness`),
otherwise at a random vector and along the certificate's lowest-curvature direction;
and every solve (an adjoint solve of reverse mode at no cost, a JVP or a Jacobian by one
product) is checked as well. If they disagree,
:class:`HessianMismatchError` says which argument is wrong.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as onp
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .exceptions import InputError, NonFiniteError, ShapeError
from .linsolve import _norm2
from .randomness import random_vector
from .sparse import HessianCompression

__all__ = ["HessianMismatchError", "UserHessian", "user_hessian"]

#: relative difference from autograd's product above which the user's Hessian is refused
CHECK_RTOL = 1e-6


class HessianMismatchError(InputError):
    """A user's ``hess``, ``hessp`` or ``hess_sparsity`` does not reproduce autograd's
    Hessian-vector product of ``f`` at a random vector. Attributes ``argument`` (which one
    is wrong) and ``difference`` (the relative difference)."""

    def __init__(self, message, argument=None, difference=None):
        super().__init__(message)
        self.argument = argument
        self.difference = difference


def user_hessian(hess=None, hessp=None, hess_sparsity=None, *, n=None, yshape=None):
    """A :class:`UserHessian` for the given arguments, or ``None`` if none is given."""
    if hess is None and hessp is None and hess_sparsity is None:
        return None
    return UserHessian(hess, hessp, hess_sparsity, n=n, yshape=yshape)


_COMPRESSIONS = {}  # id(pattern) -> (weak reference to the pattern, its HessianCompression)


def compression_for(pattern, n):
    """The :class:`~argminlib.sparse.HessianCompression` of ``pattern``, computed once per
    pattern object (``argmin`` builds a new problem at every call; the colouring of a 10^6
    pattern takes longer than the solve). Kept while the pattern object lives."""
    key = id(pattern)
    hit = _COMPRESSIONS.get(key)
    if hit is not None and hit[0]() is pattern and hit[1].n == n:
        return hit[1]
    comp = HessianCompression(pattern, n)
    try:
        ref = weakref.ref(pattern, lambda _, key=key: _COMPRESSIONS.pop(key, None))
    except TypeError:  # not weakly referenceable (a nested list): no cache
        return comp
    _COMPRESSIONS[key] = (ref, comp)
    return comp


class UserHessian:
    """The user's ``hess`` / ``hessp`` / ``hess_sparsity`` for one problem (the column
    groups of the pattern are computed once, here)."""

    def __init__(self, hess=None, hessp=None, hess_sparsity=None, *, n, yshape):
        for name, fun in (("hess", hess), ("hessp", hessp)):
            if fun is not None and not callable(fun):
                call = "hess(x, y)" if name == "hess" else "hessp(x, y, v)"
                raise InputError(
                    f"{name} must be a function {call} (scipy's conventions), not "
                    f"{type(fun).__name__}."
                )
        self.hess, self.hessp, self.n, self.yshape = hess, hessp, int(n), tuple(yshape)
        self.compression = None
        if hess_sparsity is not None:
            self.compression = compression_for(hess_sparsity, self.n)

    def at(self, x, z, autograd_hvp):
        """The products (and possibly the matrix) of ``f_YY`` at ``(x, z)``, as an internal
        object with ``matvec``, ``assembled`` and the checks against ``autograd_hvp``
        (``v -> f_YY v`` by autograd) that :class:`argminlib.Solution` runs."""
        return _AtPoint(self, x, z, autograd_hvp)


class _AtPoint:
    def __init__(self, spec, x, z, autograd_hvp):
        self.spec, self.x, self.autograd_hvp = spec, x, autograd_hvp
        self.y = z.reshape(spec.yshape) if spec.yshape else float(z[0])
        self.n = spec.n
        self._matrix = None
        self.argument = "hess" if spec.hess is not None else "hessp"
        if spec.hess is not None:
            H = spec.hess(x, self.y)
            self._from_hess(H)
        elif spec.hessp is not None:
            self.matvec = self._user_product
            self.assembled = self._recover if spec.compression is not None else None
            if spec.compression is not None:
                self.argument = "hessp and hess_sparsity"
        else:
            self.argument = "hess_sparsity"
            self.assembled = self._recover
            self.matvec = self._sparse_product

    def _from_hess(self, H):
        n = self.n
        if isinstance(H, spla.LinearOperator):
            if H.shape != (n, n):
                raise ShapeError(
                    f"hess returned a LinearOperator of shape {H.shape}; expected ({n}, {n})"
                )
            self.matvec = lambda v: _product(H.matvec, v, (n,), n, "hess's LinearOperator")
            self.assembled = None
            return
        if not sp.issparse(H):
            H = onp.asarray(H)
            if H.dtype == object or H.dtype.kind not in "fiu":
                raise InputError(
                    "hess must return an array, a scipy.sparse matrix or a LinearOperator, "
                    f"not {type(H).__name__}"
                )
            H = onp.asarray(H, dtype=float)  # no copy when it is already float
            if n == 1 and H.size == 1:
                H = H.reshape(1, 1)
        if H.shape != (n, n):
            raise ShapeError(
                f"hess returned shape {H.shape}; the Hessian over the flattened y is ({n}, {n})"
            )
        values = H.data if sp.issparse(H) else H
        if not onp.all(onp.isfinite(values)):
            raise NonFiniteError("hess returned NaN or inf.")
        H = H.tocsr() if sp.issparse(H) else H
        self.matvec = lambda v: onp.asarray(H @ v, dtype=float).reshape(-1)
        self.assembled = lambda: H

    def _rounding(self, v, norm_a):
        """The difference of two computations of ``A v`` that rounding explains, entrywise:
        ``10 n eps (|A| |v|)_i`` (each product errs by at most ``gamma_n (|A| |v|)_i``,
        Higham, *Accuracy and Stability*, 3.5; a factorised solve's residual, by its
        componentwise backward error, likewise). From the matrix where it is at hand (a
        badly scaled ``A``: the rounding of a row of entries 1e12 does not hide an error in
        a row of entries 1), else bounded by ``norm_a ||v||`` in every entry."""
        c = 10 * self.n * onp.finfo(float).eps
        vmax = float(onp.max(onp.abs(v), initial=0.0))
        if vmax == 0:
            return 0.0
        bound = c * float(norm_a) * _norm2(v)
        if self.assembled is not None and self._matrix_known():
            H = self.assembled()
            absH = abs(H) if sp.issparse(H) else onp.abs(H)
            with onp.errstate(over="ignore", invalid="ignore"):
                exact = onp.asarray(absH @ (onp.abs(v) / vmax)).reshape(-1) * (c * vmax)
            if onp.all(onp.isfinite(exact)):  # (beyond the range of floats: by norm_a)
                return onp.maximum(exact, bound)
        return bound

    def _matrix_known(self):
        """Whether the matrix is at hand without new products (``hess``, or recovered)."""
        return self.argument == "hess" or self._matrix is not None

    def _user_product(self, v):
        shape = self.spec.yshape
        return _product(lambda v_: self.spec.hessp(self.x, self.y, v_), v, shape, self.n, "hessp")

    def _recover(self):
        if self._matrix is None:
            hvp = self._user_product if self.spec.hessp is not None else self.autograd_hvp
            self._matrix = self.spec.compression.recover(hvp)
        return self._matrix

    def _sparse_product(self, v):
        return self._recover() @ v

    def check(self, v=None, against=None, product=None, rtol=CHECK_RTOL, norm_a=0.0):
        """Compare with autograd's product at ``v`` (default: a random vector).

        A random vector mostly sees the large eigenvalues; :class:`argminlib.Solution`
        therefore checks, with a factorising solver, the residual of a solve instead:
        ``v = w = A^{-1} b`` with ``against = b``, measured with autograd's products, which
        weighs the low-curvature directions (where a wrong Hessian changes the derivative
        most) and sees any error of the matrix for a random ``b``; otherwise a random vector
        and the certificate's lowest-curvature direction. In reverse mode the adjoint solve
        is checked the same way at no cost (``product``: autograd's ``A v``, already
        computed).

        Differences that rounding explains are not mismatches: that of either product,
        entrywise (:meth:`_rounding`: from ``|A| |v|`` when the matrix is at hand, else
        from ``norm_a``, an estimate of ``|A|`` such as the certificate's largest
        eigenvalue; it matters for ``v`` of low curvature at a high condition number, for
        a badly scaled ``A``, or along a null direction of a singular matrix), is taken
        off each entry of the difference before the relative test, and so is that of the
        entries of a ``v`` near the subnormal range. Raises :class:`HessianMismatchError`
        when they differ by more, and
        :class:`~argminlib.NonFiniteError` when autograd's own product is not finite."""
        if v is None:
            v = random_vector(self.n, 12345)
        if product is None:
            product = self.autograd_hvp(v)
        want = onp.asarray(product, dtype=float).reshape(-1)
        if not onp.all(onp.isfinite(want)):
            raise NonFiniteError(
                "autograd's Hessian-vector product f_YY v is NaN or inf at this point: f has "
                "no finite second derivative at y (e.g. |y|^1.5 at 0), so neither it nor "
                f"{self.argument} can be checked there."
            )
        got = onp.asarray(self.matvec(v) if against is None else against, dtype=float)
        # relative difference by overflow- and underflow-safe norms (products of any size,
        # 1e300 or 1e-300), in few passes over the vectors (10^6 entries: milliseconds)
        ref = got if against is not None else want
        v = onp.asarray(v, dtype=float)
        noise = self._rounding(v, norm_a)
        if against is not None and onp.any(v):  # entries of v near the subnormal range
            vmax = max(float(v.max()), -float(v.min()))
            wmax = max(float(want.max(initial=0.0)), -float(want.min(initial=0.0)))
            noise = noise + 10 * wmax / vmax * float(onp.nextafter(0.0, 1.0))
        scale = max(_norm2(ref), float(onp.finfo(float).tiny))
        with onp.errstate(over="ignore", invalid="ignore"):
            # the part of the difference that rounding does not explain, entry by entry
            excess = onp.maximum(onp.abs(got - want) - noise, 0.0)
            excess = onp.where(onp.isnan(got - want), onp.inf, excess)
            diff = _norm2(excess) / scale  # (inf when the two differ by ~1e308)
        if not diff <= rtol:
            if not onp.all(onp.isfinite(got)) and onp.all(onp.isfinite(want)):
                how = "is NaN or inf where autograd's f_YY v is finite"
            else:
                how = (
                    f"differs from autograd's f_YY v by {diff:.1e} (relative; at most "
                    f"{rtol:.0e} is accepted)"
                )
            what = {
                "hess": "hess(x, y) does not return f's Hessian f_YY",
                "hessp": "hessp(x, y, v) does not return f_YY v",
                "hess_sparsity": "hess_sparsity misses nonzeros of f_YY (the Hessian "
                "recovered from it is wrong)",
                "hessp and hess_sparsity": "hessp or hess_sparsity is wrong (the Hessian "
                "recovered from hessp's products on the pattern is not f_YY)",
            }[self.argument]
            raise HessianMismatchError(
                f"{what}: at a test vector v (random, or of low curvature) its product "
                f"{how}.{self._order_hint(v, want)} Fix "
                f"{self.argument}, or leave it out to use autograd's products.",
                argument=self.argument,
                difference=diff,
            )
        return True

    def _order_hint(self, v, want):
        """On a mismatch of ``hessp``: whether it matches autograd's product when called in
        another order of its arguments (scipy's ``hessp(y, v, *args)``, or ``y`` and ``v``
        swapped), the likely cause, named. Costs a user product only on the way to an
        error."""
        if self.spec.hessp is None:
            return ""
        shape = self.spec.yshape
        vv = v.reshape(shape) if shape else float(v[0])
        orders = {
            "hessp(y, v, x) (scipy.optimize's order)": (self.y, vv, self.x),
            "hessp(x, v, y)": (self.x, vv, self.y),
        }
        scale = max(_norm2(want), float(onp.finfo(float).tiny))
        for name, args in orders.items():
            try:
                with warnings.catch_warnings(), onp.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    out = onp.asarray(self.spec.hessp(*args), dtype=float).reshape(-1)
            except Exception:  # (a user function called in the wrong order may raise)
                continue
            if out.shape == want.shape and _norm2(out - want) <= 1e-6 * scale:
                return (
                    f" Called as {name} it does return f_YY v: argminlib calls "
                    "hessp(x, y, v), the paper's order (parameter x first, then y, then v)."
                )
        return ""


def _product(fun, v, shape, n, name):
    """``fun(v)`` for a user's product, as a float vector of ``n`` entries: ``v`` is passed as
    a read-only view of the given ``shape`` (``()``: a float), since it may be a Krylov
    solver's work vector or a cached test vector, which a product writing into it would
    corrupt; an output that shares memory with ``v`` (``return v``) is copied, as the solver
    writes into what it gets."""
    if shape:
        arg = v.reshape(shape)
        arg.flags.writeable = False
    else:
        arg = float(v[0])
    try:
        out = fun(arg)
    except ValueError as err:
        if "read-only" not in str(err):
            raise
        raise InputError(
            f"{name} raised ValueError({err}): it writes into a read-only array, most likely "
            "its argument v, which belongs to the solver (a Krylov method's work vector): "
            "compute the product into a new array."
        ) from None
    out = _vector(out, n, name)
    if onp.may_share_memory(out, v) or not out.flags.writeable:
        out = out.copy()
    return out


def _vector(out, n, name):
    out = onp.asarray(out)
    if out.dtype == object or out.dtype.kind not in "fiu" or out.size != n:
        raise ShapeError(
            f"{name} returned {type(out).__name__} with {out.size} values; expected {n} floats "
            "(the shape of y)."
        )
    return out.astype(float, copy=False).reshape(-1)  # no copy of a float vector
