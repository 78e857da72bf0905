"""Shared test problems with closed-form solutions and derivatives."""

import autograd.numpy as anp
import numpy as onp
import pytest
import scipy.sparse.linalg as spla


def spd(n, spectrum, seed=0):
    """A symmetric ``n x n`` matrix with eigenvalues ``spectrum`` and random eigenvectors."""
    Q, _ = onp.linalg.qr(onp.random.default_rng(seed).standard_normal((n, n)))
    return (Q * spectrum) @ Q.T


class FixedQuadratic:
    """``f = 1/2 y^T A y - (B x)^T y`` with a fixed Hessian ``A`` of a chosen spectrum
    (default ``linspace(1, 4, n)``): ``y*(x) = A^{-1} B x``, ``dy*/dx = A^{-1} B``."""

    def __init__(self, n, m=3, seed=0, spectrum=None):
        rng = onp.random.default_rng(seed)
        self.A = spd(n, onp.linspace(1.0, 4.0, n) if spectrum is None else spectrum, seed)
        self.B = rng.standard_normal((n, m))
        self.x = rng.standard_normal(m)

    def f(self, x, y):
        return 0.5 * anp.dot(y, anp.dot(self.A, y)) - anp.dot(anp.dot(self.B, x), y)

    def y(self, x):
        return onp.linalg.solve(self.A, self.B @ x)

    def forward(self, f, x, y0):
        """A closed-form forward solver (``forward=`` of argmin)."""
        return self.y(x)

    def jacobian(self):
        return onp.linalg.solve(self.A, self.B)


class Quadratic:
    """``f(x, y) = 1/2 y^T H(x) y - b(x)^T y`` with ``H(x) = H0 + sum_k x_k S_k`` and
    ``b(x) = C x + c``, over flattened ``x`` and ``y`` of any shapes. Then
    ``y*(x) = H(x)^{-1} b(x)`` and ``dy*/dx_k = H^{-1} (C_k - S_k y*)``."""

    def __init__(self, xshape, yshape, seed, sign=1.0):
        rng = onp.random.default_rng(seed)
        self.xshape, self.yshape, self.sign = xshape, yshape, sign
        m = int(onp.prod(xshape)) if xshape else 1
        n = int(onp.prod(yshape)) if yshape else 1
        G = rng.normal(size=(n, n))
        self.H0 = G @ G.T / n + 2.0 * onp.eye(n)
        S = rng.normal(size=(m, n, n)) * 0.1
        self.S = 0.5 * (S + S.transpose(0, 2, 1))
        self.C = rng.normal(size=(n, m))
        self.c = rng.normal(size=n)
        self.x = rng.normal(size=xshape) * 0.5 if xshape else float(rng.normal() * 0.5)
        self.m, self.n = m, n

    def H(self, x):
        return self.H0 + anp.tensordot(anp.reshape(x, (-1,)), self.S, axes=1)

    def f(self, x, y):
        yf = anp.reshape(y, (-1,))
        b = anp.dot(self.C, anp.reshape(x, (-1,))) + self.c
        return self.sign * (0.5 * anp.dot(yf, anp.dot(self.H(x), yf)) - anp.dot(b, yf))

    def solution(self, x):
        xf = onp.reshape(x, -1)
        y = onp.linalg.solve(self.H(x), self.C @ xf + self.c)
        return y.reshape(self.yshape) if self.yshape else float(y[0])

    def jacobian(self, x):
        y = onp.reshape(self.solution(x), -1)
        Hx = self.H(x)
        cols = [onp.linalg.solve(Hx, self.C[:, k] - self.S[k] @ y) for k in range(self.m)]
        J = onp.stack(cols, axis=1)
        return J.reshape(tuple(self.yshape) + tuple(self.xshape))


SHAPES = [((), (3,)), ((4,), (3,)), ((2, 3), (3, 2)), ((5,), ()), ((), ())]


@pytest.fixture(params=SHAPES, ids=lambda s: f"x{s[0]}-y{s[1]}")
def quadratic(request):
    xs, ys = request.param
    return Quadratic(xs, ys, seed=len(xs) * 10 + len(ys))


def cubic_f(x, y):
    """The paper's Figure 1 function, ``f(x, y) = x y^4 + 2 x^2 y^3 - 12 y^2``."""
    return x * y**4 + 2 * x**2 * y**3 - 12 * y**2


def sq(x, y):
    """``f = |y - x|^2``: the smallest problem, for input validation and solver options."""
    return anp.sum((y - x) ** 2)


# --- every linear solver, and Hessians of a chosen spectrum in a fixed rotation ----------


def user_solve(matvec, b):
    """A user's plain ``solve(matvec, b)``: scipy's GMRES on the products."""
    A = spla.LinearOperator((b.size, b.size), matvec=matvec)
    w, _ = spla.gmres(A, b, rtol=1e-13, atol=0.0, restart=b.size, maxiter=10)
    return w


SOLVERS = ["dense", "cholesky", "lu", "lstsq", "cg", "minres", "gmres", "nullspace", user_solve]
SOLVER_IDS = [s if isinstance(s, str) else "user" for s in SOLVERS]
MATRIX_FREE = ["cg", "minres", "gmres", "nullspace", user_solve]

#: larger than ``Certify.steps`` (20): the matrix-free solvers certify by Lanczos
LANCZOS_N = 30
ROTATION = onp.linalg.qr(onp.random.default_rng(0).normal(size=(LANCZOS_N, LANCZOS_N)))[0]


def spectrum_with(special):
    """``linspace(1, 2, LANCZOS_N)`` with its eighth eigenvalue replaced by ``special``."""
    d = onp.linspace(1.0, 2.0, LANCZOS_N)
    d[7] = special
    return d


def rotated_quadratic(d, b=None):
    """``f = 1/2 y^T H y - x b^T y`` with ``H = ROTATION diag(d) ROTATION^T``; at ``x = 1``
    the stationary point is ``H^+ b`` and ``dy/dx = H^+ b``. Returns ``(f, y)``."""
    Q = ROTATION
    H = Q @ onp.diag(d) @ Q.T
    b = onp.ones(LANCZOS_N) if b is None else b
    inv = onp.where(onp.abs(d) > 0, 1.0 / onp.where(d == 0, 1.0, d), 0.0)
    y = Q @ (inv * (Q.T @ b))
    return (lambda x, y_: 0.5 * y_ @ H @ y_ - x * (b @ y_)), y


# Property-based tests: a fixed, bounded profile so the suite stays fast and repeatable.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "argminlib",
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("argminlib")
