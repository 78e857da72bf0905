"""The one implicit-differentiation mechanism of argminlib.

A problem declares an *optimality function* ``F(x, z)`` whose zeros are its solutions: the
gradient ``f_Y`` for an unconstrained argmin or argmax, the KKT residual for a constrained
one, the barrier gradient for the log-barrier approximation, ``T(x, z) - z`` for a fixed
point. ``z`` is a flat 1-D array of length ``n``; ``x`` is the parameter: a float, an array
of any shape, or any container (tuple, list, dict) of them that autograd differentiates. At
a solution ``F(x, z(x)) = 0``, and the implicit function theorem gives

    A dz/dx = -B,    A = dF/dz (n x n),    B = dF/dx.

A :class:`Solution` holds one solved ``z``: it linearises ``F`` there once (so ``A`` is a
:class:`~argminlib.LinearSystem` of autograd products, factorised at most once by a dense
solver), certifies it once (:mod:`argminlib.certify`), and serves any number of

* JVPs (forward mode): ``dz = solve(A, -B v)``,
* VJPs (reverse mode): ``w = solve(A^T, -u)``, then ``u^T dz/dx = w^T B``, one solve per
  cotangent whatever the size of ``x``,
* full Jacobians, and
* the autograd primitive :meth:`Solution.attach`, which returns ``z`` as a differentiable
  function of ``x`` (``autograd.grad``, ``jacobian``, ``make_jvp``, ``hessian`` ...).

Every linear solve goes through the primitive :func:`linear_solve`, whose own derivative is
one more solve with the same operator (``w`` is the root of ``A(x, z) w - b = 0``): so
second and higher derivatives, and argmins nested in other objectives, are exact with
every solver, dense or matrix-free, in the same way that autograd's ``fixed_point``
differentiates its reverse pass.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as onp
from autograd import grad, make_jvp, make_vjp
from autograd.builtins import dict as adict
from autograd.builtins import list as alist
from autograd.builtins import tuple as atuple
from autograd.extend import defjvp, defvjp, primitive, vspace
from autograd.misc import flatten
from autograd.tracer import getval, isbox

from . import certify as _certify
from .exceptions import ArgminError, InputError, LinearSolveError, NonFiniteError, ShapeError
from .hessian import CHECK_RTOL
from .linsolve import (
    LinearSystem,
    SolveInfo,
    _norm2,
    constraint_svd,
    get_solver,
    probe,
)
from .partials import call_user
from .randomness import random_vector

__all__ = [
    "Linearization",
    "Solution",
    "linear_solve",
    "root",
    "fixed_point",
    "plain",
    "is_traced",
]


def plain(x):
    """``x`` with every autograd box removed (containers recursively)."""
    x = getval(x)
    if isinstance(x, (tuple, list)):
        return type(x)(plain(v) for v in x)
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return x


def value(x):
    """The plain value of ``x``: every autograd box removed (containers recursively), for
    computing a solution to hand to :func:`root` or :func:`fixed_point` inside ``grad``."""
    return plain(x)


def traceable(x):
    """``x`` with every plain container that holds traced values rebuilt with autograd's
    container primitives, so that a tuple ``(box, 2.0)`` is itself traced (a primitive
    called with a plain tuple would not see the box inside it)."""
    if isbox(x) or not is_traced(x):
        return x
    if isinstance(x, tuple):
        return atuple(tuple(traceable(v) for v in x))
    if isinstance(x, list):
        return alist([traceable(v) for v in x])
    if isinstance(x, dict):
        return adict({k: traceable(v) for k, v in x.items()})
    return x


def is_traced(x):
    """Whether ``x`` (or anything in it) is being traced by autograd."""
    if isbox(x):
        return True
    if isinstance(x, (tuple, list)):
        return any(is_traced(v) for v in x)
    if isinstance(x, dict):
        return any(is_traced(v) for v in x.values())
    return False


def _reverse_over_reverse(vjp, n, v, like):
    """``J v`` from the linear map ``vjp: w -> J^T w`` (``w`` of length ``n``)."""
    vs = vspace(like)
    return grad(lambda w: vs.inner_prod(vjp(w), v))(onp.zeros(n))


class Linearization:
    """``F`` linearised at the numeric point ``(x, z)``: the residual ``F(x, z)`` and
    ``A = dF/dz`` as a :class:`~argminlib.LinearSystem` of autograd products, and
    ``vjp_x(w) = w^T dF/dx``.

    One forward pass of ``F`` in ``(x, z)`` jointly gives the residual, ``vjp_x`` and the
    first products; a second pass in ``z`` alone is traced only when products with ``A``
    are needed again (then each costs one backward pass through the ``z`` part only).

    ``hessian``: a :class:`argminlib.hessian.UserHessian` (the user's ``hess``, ``hessp`` or
    ``hess_sparsity``; symmetric ``A`` only): its products, or its matrix, replace autograd's
    in the numeric solves, after one comparison with autograd's product."""

    def __init__(self, F, x, z, *, symmetric, sign=0, kkt_rows=0, name="dF/dz", hessian=None):
        xv = plain(x)
        zv = onp.asarray(getval(z), dtype=float).reshape(-1)
        n = zv.size
        vjp_xz, r = make_vjp(lambda p: F(p[0], p[1]))(atuple((xv, zv)))
        r = onp.asarray(getval(r))
        if r.shape != (n,):
            raise ShapeError(
                f"The optimality function returned shape {r.shape}, expected ({n},) (one "
                "equation per unknown)."
            )
        if onp.iscomplexobj(r) or not onp.all(onp.isfinite(r)):
            raise NonFiniteError(
                f"The optimality conditions ({name}) evaluate to NaN, inf or complex values "
                "at this point: check f, the constraints and that y is in their domain."
            )

        traced = {}

        def vjp_z(v):
            if "z" not in traced:  # products with A from here on: trace F in z alone
                traced["z"] = make_vjp(lambda z_: F(xv, z_))(zv)[0]
            return traced["z"](v)

        def rmatvec(v):
            return onp.asarray(vjp_z(v), dtype=float)

        def matvec(v):
            return onp.asarray(_reverse_over_reverse(vjp_z, n, v, zv), dtype=float)

        def joint(w):  # both parts of one backward pass: (w^T dF/dx, w^T dF/dz)
            gx, gz = vjp_xz(w)
            return gx, onp.asarray(gz, dtype=float)

        def first_product(v):  # the z part (the user-Hessian check)
            return joint(v)[1]

        self.joint = joint
        self.vjp_x = lambda w: vjp_xz(w)[0]

        self.F, self.x, self.z, self.n, self.residual = F, xv, zv, n, r.astype(float)
        if hessian is not None:
            if not symmetric or kkt_rows:
                raise InputError("hess, hessp and hess_sparsity serve a symmetric Hessian only")
            user = hessian.at(xv, zv, first_product)
            self.user_hessian = user
            self.system = LinearSystem(
                n,
                user.matvec,
                symmetric=True,
                sign=sign,
                name=name,
                assembled=user.assembled,
            )
            return
        self.system = LinearSystem(
            n,
            rmatvec if symmetric else matvec,
            rmatvec,
            symmetric=symmetric,
            sign=sign,
            kkt_rows=kkt_rows,
            name=name,
        )


class _Operator:
    """``A(x, z) = dF/dz`` for :func:`linear_solve`: the numeric system of a
    :class:`Linearization` (and its solver) for the solve, and traced products
    ``apply(x, z, w)`` for the derivative of the solve."""

    def __init__(self, F, system, solver, log, transposed=False):
        self.F, self.system, self.solver, self.log = F, system, solver, log
        self.transposed = transposed

    @property
    def T(self):
        if self.system.symmetric:
            return self
        return _Operator(self.F, self.system, self.solver, self.log, not self.transposed)

    def solve(self, b):
        system = self.system.T if self.transposed else self.system
        w, info = self.solver(system, b)
        self.log.append(info)
        return w

    def apply(self, x, z, w):
        """``A(x, z) w`` (``A^T w`` when transposed), traceable in ``x``, ``z`` and ``w``."""
        vjp_z, _ = make_vjp(lambda z_: self.F(x, z_))(z)
        if self.system.symmetric or self.transposed:
            return vjp_z(w)
        return _reverse_over_reverse(vjp_z, anp.size(getval(z)), w, getval(z))


@primitive
def linear_solve(args, op):
    """``w = A(x, z)^{-1} b`` for ``args = (b, x, z)``, differentiable in all three."""
    b = args[0]
    return op.solve(onp.asarray(b, dtype=float))


def _linear_solve_vjp(w, args, op):
    x, z = args[1], args[2]

    def back(g):
        u = linear_solve(atuple((g, x, z)), op.T)
        vjp_xz, _ = make_vjp(lambda xz: op.apply(xz[0], xz[1], w))(atuple((x, z)))
        gxz = vjp_xz(-u)
        return atuple((u, gxz[0], gxz[1]))

    return back


def _linear_solve_jvp(g, w, args, op):
    x, z = args[1], args[2]
    _, dAw = make_jvp(lambda xz: op.apply(xz[0], xz[1], w))(atuple((x, z)))(atuple((g[1], g[2])))
    return linear_solve(atuple((g[0] - dAw, x, z)), op)


defvjp(linear_solve, _linear_solve_vjp, None)
defjvp(linear_solve, _linear_solve_jvp, None)


class _XProducts:
    """Products with ``B = dF/dx`` at ``(x, z)`` (traced if ``x`` or ``z`` are).

    ``first``: an existing ``w -> w^T B`` (a :class:`Linearization`'s joint trace in
    ``(x, z)``) used for the first product only; each of its backward passes also runs
    through the ``z`` part, so from the second product on (Jacobian rows) ``F`` is traced
    in ``x`` alone."""

    def __init__(self, F, x, z, first=None):
        self.F, self.x, self.z, self.n = F, x, z, int(anp.size(getval(z)))
        self._first, self._own = first, None
        if first is None:
            self._own = make_vjp(lambda x_: F(x_, z))(x)[0]

    def vjp(self, w):
        if self._own is None:
            if self._first is not None:
                first, self._first = self._first, None
                return first(w)
            self._own = make_vjp(lambda x_: self.F(x_, self.z))(self.x)[0]
        return self._own(w)

    def jvp(self, v):
        return _reverse_over_reverse(self.vjp, self.n, v, getval(self.x))


@primitive
def _attach(x, solution):
    return onp.array(solution.z)


def _attach_vjp(z, x, solution):
    return lambda u: solution.vjp(u, x, z)


def _attach_jvp(v, z, x, solution):
    return solution.jvp(v, x, z)


defvjp(_attach, _attach_vjp, None)
defjvp(_attach, _attach_jvp, None)


def _same_point(x, z, x0, z0):
    """Whether ``(x, z)`` has the values of ``(x0, z0)`` (untraced)."""
    if x is x0 and z is z0:
        return True
    if isinstance(x, (onp.ndarray, float)) and isinstance(x0, (onp.ndarray, float)):
        a, b = onp.asarray(x).reshape(-1), onp.asarray(x0).reshape(-1)  # (flatten is slow)
    else:
        try:
            a, b = flatten(x)[0], flatten(x0)[0]
        except TypeError:
            return False
    za = onp.asarray(z).reshape(-1)
    return a.shape == b.shape and onp.array_equal(a, b) and onp.array_equal(za, z0)


class Solution:
    """A solution ``z`` of ``F(x, z) = 0``, linearised and certified once.

    Parameters
    ----------
    F : callable
        ``F(x, z) -> array (n,)``, written with ``autograd.numpy``.
    x : float, array or container
        The parameter.
    z : array
        The solution (flattened).
    symmetric : bool
        Whether ``dF/dz`` is symmetric (``F`` a gradient or KKT residual).
    sign : {+1, -1, 0}
        What ``z`` claims to be: a minimum (``dF/dz`` positive definite, on the constraints'
        null space if ``kkt_rows``), a maximum, or any nonsingular root.
    kkt_rows : int
        Number of trailing multipliers (``dF/dz`` is a KKT matrix).
    solver : str or linear solver
        See :func:`argminlib.get_solver`. A solver with a ``certificate`` method
        (:class:`~argminlib.Sparse`) certifies by its factorisation.
    certify : bool, str or Certify
        ``True`` (default), ``False``, a method name or a :class:`argminlib.Certify`.
    name : str
        What ``dF/dz`` is, for messages.
    hessian : optional
        The user's second derivatives (see :class:`Linearization`), or ``None``.
    deferred : bool
        Linearise only: certify later, by :meth:`establish` (a Newton iterate that may not
        be the accepted point).
    """

    def __init__(
        self,
        F,
        x,
        z,
        *,
        symmetric=False,
        sign=0,
        kkt_rows=0,
        solver="dense",
        certify=True,
        name="Jacobian dF/dz of the optimality conditions",
        hessian=None,
        deferred=False,
    ):
        self.solver = get_solver(solver)
        self.config = _certify.as_certify(certify)
        self.lin = Linearization(
            F, x, z, symmetric=symmetric, sign=sign, kkt_rows=kkt_rows, name=name, hessian=hessian
        )
        self.F, self.x, self.z, self.n, self.sign = F, self.lin.x, self.lin.z, self.lin.n, sign
        self.log = []
        self._x_products = None
        self.op = _Operator(F, self.lin.system, self.solver, self.log)
        self.solver.validate(self.lin.system)
        self.certificate = None
        self.established = False
        if not deferred:
            self.establish()

    def establish(self):
        """Certify this solution and check the user's Hessian at it, once (a solution made
        with ``deferred=True``, a Newton iterate of ``polish``, is certified only if it
        is the one accepted). The certificate's curvature is handed to the system, whose
        Krylov solves bound their error by it. Returns ``self``."""
        if self.established:
            return self
        self.established = True
        user = getattr(self.lin, "user_hessian", None)
        try:
            self._certify(user is not None)
        except ArgminError:
            if user is not None:  # a wrong hess/hessp is the likelier culprit: say so first
                user.check()
            raise
        if user is not None:
            self._check_user_hessian(user)
        c = self.certificate
        if c is not None and self.sign:  # Krylov solves bound their error by it (with
            # constraints: those on the reduced Hessian, NullSpace's inner solves)
            lam = c.bound  # else the smallest |eigenvalue|, halved if a Ritz value (the
            # Kuczynski-Wozniakowski convention of the bound: Ritz values lie above it)
            if lam is None:
                lam = c.smallest if c.exact else 0.5 * c.smallest
            # the rounding a Krylov solve may claim: that of A itself, at most 1 / rcond (a
            # factorising certificate judged D A D, whose condition may be far smaller)
            cap = 1.0 / max(self.config.rcond, onp.finfo(float).tiny)
            self.lin.system.certify_curvature(lam, c.unscaled_condition, cap)
        return self

    def _certify(self, direction):
        if self.config is not None:
            self.certificate = _certify.certify_solution(
                self.lin.system,
                self.sign,
                self.config,
                self.solver,
                direction=direction,  # the user Hessian is checked along it
                residual=self.lin.residual,
            )

    def _check_user_hessian(self, user):
        """The user's Hessian against autograd's products (one each): with a factorising
        solver, the residual of one solve ``A w = b`` for a random ``b`` (the probe the
        certificate may have solved already); otherwise at a random vector and along the
        certificate's lowest-curvature direction, if it has one. The solves are checked
        too, every one (:meth:`vjp` at no cost, :meth:`jvp` and :meth:`jacobian` by one
        product)."""
        if self.solver.factorizes and not self.solver.minimum_norm:
            # one product at w + s r: the probe's residual (low curvature) and a random
            # vector r (high curvature) at once, s making both parts the same size
            b, w = probe(self.solver, self.lin.system)
            r = random_vector(self.n, 12345)
            Ar = user.matvec(r)
            s = float(onp.linalg.norm(b)) / max(float(onp.linalg.norm(Ar)), 1e-300)
            s = onp.copysign(s, float(b @ Ar))  # the two parts add up, never cancel
            # (for n = 1 they could cancel exactly, leaving a test of rounding alone)
            user.check(w + s * r, against=b + s * Ar)
            return
        user.check()
        direction = getattr(self.certificate, "direction", None)
        if direction is not None:  # low curvature (a null direction with a minimum-norm
            # solver): its product may be at the rounding level of |A|
            user.check(onp.asarray(direction, dtype=float), norm_a=self._norm_a())

    def _norm_a(self):
        """``|A|`` as the certificate estimates it (its largest |eigenvalue|), or 0: the
        scale of the rounding the user-Hessian checks allow for."""
        c = self.certificate
        big = max(abs(c.lowest), abs(c.highest)) if c is not None else 0.0
        return big if onp.isfinite(big) else 0.0

    def x_products(self, x=None, z=None):
        """Products with ``B = dF/dx`` at ``(x, z)``. At this solution's own numeric point
        ``F`` is traced once and reused by every later VJP, JVP and Jacobian row (e.g. by
        ``autograd.jacobian`` through ``argmin``); a traced ``x`` or ``z`` (a higher-order
        derivative) gets fresh, traced products."""
        x = self.x if x is None else x
        z = self.z if z is None else z
        if is_traced(x) or is_traced(z) or not _same_point(x, z, self.x, self.z):
            return _XProducts(self.F, x, z)
        if self._x_products is None:
            self._x_products = _XProducts(self.F, x, z, first=self.lin.vjp_x)
        return self._x_products

    @property
    def system(self):
        """``A = dF/dz`` at the solution, a :class:`~argminlib.LinearSystem`."""
        return self.lin.system

    @property
    def residual(self):
        return self.lin.residual

    def newton_step(self):
        """``-A^{-1} F(x, z)``: the first-order distance to the exact solution.

        It decides acceptance and polishes ``z``, so it needs a few correct digits, not
        ten: a Krylov solver runs with ``rtol = min(1e-4, 1e-3 / condition)`` (or its own
        ``rtol`` if tighter), where ``condition`` is the certificate's estimate, so that the
        step's relative error is below about a thousandth (a Lanczos estimate of
        ``condition`` errs low, hence the margin). Without a certificate the
        solver's own ``rtol`` is kept."""
        if not onp.any(self.residual):
            return onp.zeros(self.n)
        solver = self.solver
        if self.certificate is not None and onp.isfinite(self.certificate.condition):
            # (its primal part's error need not be below NEGLIGIBLE_STEP * max(1, |y|), the
            # least step the acceptance test tells from zero)
            ny = self.n - self.system.kkt_rows
            y_size = max(1.0, float(onp.max(onp.abs(self.z[:ny]), initial=0.0)))
            solver = solver.loosened(
                min(1e-4, 1e-3 / max(self.certificate.condition, 1.0)),
                primal_atol=1e-3 * NEGLIGIBLE_STEP * y_size,
            )
        w, info = solver(self.system, -self.residual)
        return w

    def unexplained(self, step):
        """For a minimum-norm solver (``lstsq``) and a Newton step ``s``:
        ``max|A s + F| / max|eig(A)|``, the part of the residual that no step can remove (it
        lies off the range of a singular ``A``: ``y`` is not stationary along a flat
        direction), in the units of ``y`` (for a KKT matrix, each constraint row's residual
        divided by the row's norm instead); ``0`` for other solvers or without a
        certificate. Above rounding level (``1e3 eps max(1, |y|)``) no Newton step reaches a
        solution, and the acceptance test refuses ``y``."""
        c = self.certificate
        if not self.solver.minimum_norm or c is None:
            return 0.0
        big = max(abs(c.lowest), abs(c.highest))
        if not (big > 0 and onp.isfinite(big)):
            return 0.0
        r = self.system.apply(onp.asarray(step, dtype=float)) + self.residual
        p = self.system.kkt_rows
        if not p:
            return float(onp.max(onp.abs(r), initial=0.0)) / big
        # KKT: the stationarity rows divided by the curvature, each constraint row by its
        # norm: distances in y either way, whatever the units of each constraint
        n = self.system.n - p
        norms = constraint_svd(self.system)[3]
        off = onp.abs(r[n:]) / norms
        return max(float(onp.max(onp.abs(r[:n]), initial=0.0)) / big, float(onp.max(off)))

    def step_bound(self):
        """An upper bound on the length of the Newton step ``-A^{-1} F(x, z)`` without
        solving: ``norm(F) / certificate.bound``, the certificate's lower bound on the
        curvature (see :class:`~argminlib.Certificate`), or ``None`` when there is none or
        the solver factorises (a factorised solve costs little).

        The bound holds with the certificate's probability whatever the problem, since the
        Lanczos start is random (this process's entropy), and robustly where it matters: a
        ``z`` off the solution along a direction of low curvature has ``F`` along it, and
        the certificate's Lanczos run started from ``F`` too (:mod:`argminlib.certify`)."""
        bound = getattr(self.certificate, "bound", None)
        if bound is None or self.solver.factorizes:
            return None
        return _norm2(self.residual) / bound

    def info(self):
        """The :class:`~argminlib.SolveInfo` of the solves so far, with the certificate."""
        info = None
        for i in self.log:
            info = i if info is None else info.merge(i)
        if info is None:
            info = SolveInfo(getattr(self.solver, "name", "solver"), 0, 0.0, True, 0)
        return info.with_certificate(self.certificate)

    # -- derivatives -----------------------------------------------------------------

    def attach(self, x):
        """``z`` as a differentiable function of ``x`` (an autograd primitive): call it with
        the (possibly traced) ``x`` this solution was computed for."""
        return _attach(traceable(x), self)

    def vjp(self, u, x=None, z=None):
        """``u^T dz/dx = -(A^{-T} u)^T B`` for ``u`` of shape (n,) (like ``z``), with
        ``A = dF/dz`` and ``B = dF/dx``; the result has the structure of ``x`` (one solve with
        ``A^T``). Traceable: pass the traced ``x`` to differentiate the result again (``z``:
        the solution's value, as the primitive returned it).

        With the user's Hessian, a plain VJP also checks its adjoint solve
        ``w = A^{-T} u`` against autograd: the backward pass that gives ``w^T B`` gives the
        product of ``A`` and ``w`` with it."""
        x = self.x if x is None else traceable(x)
        z = self.z if z is None else z
        w = linear_solve(atuple((-u, x, z)), self.op.T)
        gx = self._check_solve(x, z, w, -onp.asarray(getval(u), dtype=float))
        if gx is not None:
            return gx  # the same backward pass gave w^T B
        return self.x_products(x, z).vjp(w)

    def _check_solve(self, x, z, w, b):
        """With the user's Hessian: check the solve ``A w = b`` (``A`` the user's) by
        autograd's product with ``w``, from the joint backward pass that also gives
        ``w^T B`` (returned for :meth:`vjp`, else ``None``). A wrong user Hessian along the
        directions that matter to this derivative changes ``w`` most, so this weighs them;
        every plain solve at this solution's point is checked (a VJP at no cost, a JVP or a
        Jacobian at one product), since each may need other directions: the check at the
        solution sees an error along a direction only in proportion to its random vectors'
        components there. A minimum-norm
        solver's ``w`` need not solve ``A w = b`` (``b`` off the range): its user product
        ``A w`` is compared instead."""
        user = getattr(self.lin, "user_hessian", None)
        if user is None or is_traced((x, z, w)):
            return None
        if not _same_point(x, z, self.x, self.z):
            return None
        w = onp.asarray(w, dtype=float)
        gx, Aw = self.lin.joint(w)
        if self.solver.minimum_norm:
            user.check(w, against=user.matvec(w), product=Aw, norm_a=self._norm_a())
        else:
            residual = self.log[-1].residual if self.log else 0.0
            rtol = max(CHECK_RTOL, 10 * residual)
            user.check(w, against=b, product=Aw, rtol=rtol, norm_a=self._norm_a())
        return gx

    def jvp(self, v, x=None, z=None):
        """``dz/dx v = -A^{-1} B v`` for ``v`` of the structure of ``x``: an array (n,)
        (one solve with ``A``). With the user's Hessian, a plain JVP also checks its solve
        against autograd (one product)."""
        x = self.x if x is None else traceable(x)
        z = self.z if z is None else z
        b = -self.x_products(x, z).jvp(v)
        w = linear_solve(atuple((b, x, z)), self.op)
        self._check_solve(x, z, w, onp.asarray(getval(b), dtype=float))
        return w

    def jacobian(self):
        """``dz/dx`` as an ``n x m`` array over the flattened ``x`` (``m`` entries), with
        whichever of forward or reverse needs fewer solves; with a factorising solver (dense
        or sparse) one multi-column back-substitution after one factorisation."""
        flat_x, unflatten = flatten(self.x)
        m = flat_x.size
        B = self.x_products()
        eye = onp.eye(self.n)
        rows = onp.stack([flatten(B.vjp(e))[0] for e in eye]) if self.n else onp.zeros((0, m))
        if m <= self.n or self.solver.factorizes:
            g = random_vector(m, 7)
            J = onp.asarray(self.op.solve(-rows.reshape(self.n, m)), dtype=float)
            # a user Hessian: every column checked at once, along a random combination
            self._check_solve(self.x, self.z, J @ g, -(rows.reshape(self.n, m) @ g))
            return J
        W = self.op.T.solve(-eye)
        g = random_vector(self.n, 7)
        self._check_solve(self.x, self.z, W @ g, -g)  # (symmetric A with a user Hessian)
        return W.T @ rows  # row i of J is -(A^{-T} e_i)^T B


#: a Newton step certified below this (relative to ``max(1, |y|)``) is not taken: the
#: Krylov solves that would compute it are only accurate to about the same level
NEGLIGIBLE_STEP = 1e-10


def polish(make_solution, z, steps, ny=None, tol=None):
    """Up to ``steps`` Newton steps from ``z`` while the step shrinks; returns the accepted
    :class:`Solution` (``make_solution(z, deferred)``) and the size of its Newton step
    (largest entry of the primal part, the first ``ny`` entries): the first-order distance
    to the solution, whatever the scale of ``F``.

    No step is solved for when the certificate bounds it (:meth:`Solution.step_bound`)
    below ``min(tol, NEGLIGIBLE_STEP) * max(1, |y|)``: then that bound is the size. Only
    the first point (for that bound) and the accepted one are certified; the Newton
    iterates in between are linearised only (``deferred``), so a forward answer a little
    off costs two certificates, not one per step."""
    ny = len(z) if ny is None else ny
    negligible = NEGLIGIBLE_STEP if tol is None else min(tol, NEGLIGIBLE_STEP)

    def scale(sol):
        return max(1.0, float(onp.max(onp.abs(sol.z[:ny]))) if ny else 1.0)

    def step_of(sol):
        bound = sol.step_bound()
        if bound is not None and bound <= negligible * scale(sol):
            return None, bound
        step = sol.newton_step()
        size = float(onp.max(onp.abs(step[:ny]))) if ny else 0.0
        if sol.unexplained(step) > 1e3 * onp.finfo(float).eps * scale(sol):
            size = onp.inf  # f_Y off the range of a singular f_YY: no step reaches a solution
        return step, size

    first = sol = make_solution(z, False)
    step, size = step_of(sol)
    first_size = size
    for _ in range(steps):
        if step is None or size <= 1e-14 * scale(sol):
            break
        try:
            new = make_solution(sol.z + step, True)
            new_step, new_size = step_of(new)
        except ArgminError:
            break
        if not new_size < size:
            break
        sol, step, size = new, new_step, new_size
    if sol is not first:
        # the accepted iterate, certified now: its step judged again with the certificate's
        # checks (the error bound of a Krylov solve, the unexplained residual of a
        # minimum-norm one); if that solve cannot be certified, the first point's stands
        sol.establish()
        try:
            step, size = step_of(sol)
        except LinearSolveError:
            return first, first_size
    return sol, size


def root(
    F,
    x,
    z,
    *,
    solver="gmres",
    symmetric=False,
    tol=1e-6,
    certify=True,
    polish_steps=5,
    _caller="root",
):
    """``z`` with the derivative of the implicit function ``F(x, z(x)) = 0`` attached:
    an autograd-differentiable function of ``x`` (as JAXopt's ``custom_root``).

    ``z`` is a solution you computed by any means (any array shape), from plain values
    (:func:`~argminlib.value` of a traced ``x``). Up to ``polish_steps``
    Newton steps refine it (so a solver's ``1e-8`` answer becomes a ``1e-15`` one); then
    the Newton step ``-A^{-1} F(x, z)`` must be at most ``tol * max(1, |z|)`` in every
    entry, and ``A = dF/dz`` nonsingular (certified as in :mod:`argminlib.certify`). The
    linear solver must handle a non-symmetric ``A`` unless ``symmetric=True`` (default
    GMRES). ``x`` may be a number, an array or a container (tuple, list, dict) of arrays.
    Example, the square root of ``x`` as the root of ``z^2 - x``::

        z = al.root(lambda x, z: z**2 - x, x, onp.sqrt(x))
    """
    if is_traced(z):
        # dropping the trace could be silently wrong: it may carry a dependence on a
        # variable other than x (a hyperparameter in T's closure), which the implicit
        # derivative in x would lose
        raise InputError(
            f"z is being traced by autograd: {_caller} attaches the implicit derivative in x "
            "to a solution you computed, and z's own trace may depend on variables other "
            "than x (lost if dropped). Compute z from plain values, e.g. "
            "z = my_solver(al.value(x)), and pass the traced x; put every variable that "
            f"{'T' if _caller == 'fixed_point' else 'F'} depends on into x."
        )
    if isinstance(z, (list, tuple)):
        z = onp.asarray(z, dtype=float)
    shape = onp.shape(getval(z))
    zf = _check_array(z, "z").reshape(-1)
    value = call_user(lambda x_, z_: F(x_, onp.reshape(z_, shape)), plain(x), zf, "F", "z")
    if value.size != zf.size:
        raise ShapeError(
            f"F(x, z) returned {value.size} values for z of {zf.size} entries: root needs a "
            "square system (as many equations as unknowns)."
        )

    def Fflat(x_, z_):
        out = F(x_, anp.reshape(z_, shape))
        if isinstance(out, (list, tuple)):
            out = anp.array(out)
        return anp.reshape(out, (-1,))

    def make(zz, deferred=False):
        return Solution(
            Fflat, x, zz, symmetric=symmetric, solver=solver, certify=certify, deferred=deferred
        )

    tol = _check_positive(tol, "tol")
    if symmetric:
        _check_symmetric(make(zf).system)
    sol, size = polish(make, zf, polish_steps, tol=tol)
    check_step(size, sol.z, tol, "F(x, z) = 0", name="z")
    out = sol.attach(x)
    return anp.reshape(out, shape) if shape else out[0]


def fixed_point(T, x, z, *, solver="gmres", tol=1e-6, certify=True, polish_steps=5):
    """``z = T(x, z)`` at a fixed point ``z`` you computed, with the derivative attached
    (as JAXopt's ``custom_fixed_point``): :func:`root` of ``T(x, z) - z``. Example::

        z = al.fixed_point(lambda a, z: np.cos(a * z), a, z_from_iterating)
    """

    def F(x_, z_):
        out = T(x_, z_)
        if isinstance(out, (list, tuple)):
            out = anp.array(out)
        if out is None or not hasattr(out, "shape") and not isinstance(out, (int, float)):
            raise InputError(f"T(x, z) returned {type(out).__name__}; it must return an array")
        return out - z_

    return root(
        F,
        x,
        z,
        solver=solver,
        tol=tol,
        certify=certify,
        polish_steps=polish_steps,
        _caller="fixed_point",
    )


def _check_positive(tol, name):
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0 < tol < onp.inf):
        raise InputError(f"{name}={tol!r}: use a finite positive number")
    return float(tol)


def _check_symmetric(system, seed=0):
    """A user's ``symmetric=True`` claim, checked with two random vectors: ``u^T A v``
    must equal ``v^T A u`` (a wrong claim would transpose the derivative silently)."""
    rng = onp.random.default_rng(seed)
    u, v = rng.standard_normal(system.n), rng.standard_normal(system.n)
    Av, Au = system.apply(v), system.apply(u)
    a, b = float(u @ Av), float(v @ Au)
    scale = max(onp.linalg.norm(Av) * onp.linalg.norm(u), onp.finfo(float).tiny)
    if abs(a - b) > 1e-8 * scale:
        raise InputError(
            f"symmetric=True, but dF/dz is not symmetric: u^T A v = {a:.6e} and v^T A u = "
            f"{b:.6e} for random u, v. Pass symmetric=False (the default)."
        )


def _check_array(a, name):
    a = onp.asarray(getval(a))
    if a.dtype == object or a.dtype.kind not in "fiub":
        raise InputError(f"{name} must be a real float array, not {a.dtype}")
    a = a.astype(float)
    if not onp.all(onp.isfinite(a)):
        raise NonFiniteError(f"{name} contains NaN or inf; pass finite values.")
    return a


def check_step(size, z, tol, what, ny=None, name="y"):
    """Raise :class:`~argminlib.NotStationaryError` unless ``size``, the largest entry of the
    Newton step's primal part (the first ``ny`` entries of ``z``), is at most
    ``tol * max(1, max|y|)``."""
    from .exceptions import NotStationaryError

    ny = len(z) if ny is None else ny
    s = float(size)
    scale = max(1.0, float(onp.max(onp.abs(z[:ny]))) if ny else 1.0)
    if not s <= tol * scale:
        raise NotStationaryError(
            f"{name} does not satisfy {what}: the Newton step to the solution has length "
            f"{s:.3e} > tol * max(1, |{name}|) = {tol * scale:.1e} (a scale-free measure: it "
            "does "
            "not change when f is multiplied by a constant). The implicit derivative is only "
            "valid at a solution: solve the lower-level problem more accurately (or pass a "
            f"better {name}), or raise tol if this accuracy is what you want.",
            residual=s / scale,
            tol=tol,
        )
    return s / scale
