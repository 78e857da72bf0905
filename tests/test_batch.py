"""argminlib.batch: many independent argmins at once (issue 18).

Each test states a user-visible outcome: the batched answer and its derivatives agree with
a loop of single-problem ``argminlib.argmin`` calls (or finite differences) within a stated
tolerance, or the error names the failing problem and says what was found.
"""

import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad, jacobian, make_jvp

import argminlib as al
from argminlib.batch import argmax_batch, argmin_batch

#: agreement with the loop of single problems, relative to max(1, max |reference|)
RTOL = {"dense": 1e-8, "cg": 1e-6}
SOLVERS = ["dense", "cg"]


def close(a, b, solver):
    return al.max_error(a, b, relative=True) <= RTOL[solver]


def spd(rng, B, n, low=1.0, high=4.0):
    """``B`` symmetric ``n x n`` matrices with eigenvalues in ``[low, high]``."""
    Q = onp.linalg.qr(rng.standard_normal((B, n, n)))[0]
    lam = rng.uniform(low, high, (B, n))
    return onp.einsum("bij,bj,bkj->bik", Q, lam, Q)


# --- the batched problems and their single-problem forms ----------------------------------


class QuadraticBatch:
    """``f_b = 1/2 y^T A_b y - (C_b x_b)^T y``, ``x`` of shape ``(B, m)``."""

    def __init__(self, rng, B=6, n=4, m=3, sign=1.0):
        self.A, self.C, self.sign = spd(rng, B, n), rng.standard_normal((B, n, m)), sign
        self.x, self.y0 = rng.standard_normal((B, m)), onp.zeros((B, n))

    def f(self, x, y):
        c = anp.einsum("bij,bj->bi", self.C, x)
        return self.sign * (0.5 * anp.einsum("bi,bij,bj->b", y, self.A, y) - anp.sum(c * y, 1))

    def single(self, b):
        A, C, s = self.A[b], self.C[b], self.sign
        return lambda x, y: s * (0.5 * anp.dot(y, anp.dot(A, y)) - anp.dot(anp.dot(C, x), y))


class RidgeBatch:
    """Ridge regression with one weight ``exp(x_b[i])`` per coefficient, per problem."""

    def __init__(self, rng, B=6, n=4):
        self.X = rng.standard_normal((B, 2 * n, n)) / onp.sqrt(2 * n)
        self.t = rng.standard_normal((B, 2 * n))
        self.x, self.y0 = 0.5 * rng.standard_normal((B, n)), onp.zeros((B, n))

    def f(self, x, y):
        r = anp.einsum("bij,bj->bi", self.X, y) - self.t
        return 0.5 * anp.sum(r * r, 1) + 0.5 * anp.sum(anp.exp(x) * y**2, 1)

    def single(self, b):
        X, t = self.X[b], self.t[b]

        def f(x, y):
            r = anp.dot(X, y) - t
            return 0.5 * anp.dot(r, r) + 0.5 * anp.sum(anp.exp(x) * y**2)

        return f


def lse(z, axis):
    m = anp.max(z, axis=axis, keepdims=True)
    return anp.log(anp.sum(anp.exp(z - m), axis=axis)) + anp.squeeze(m, axis)


class LogSumExpBatch:
    """A smooth convex non-quadratic: ``f_b = lse(M_b y + x_b) + 1/2 sum exp(x_b[:n]) y^2
    - c_b^T y`` with ``x`` of shape ``(B, k)``, ``k = 2n`` (as a dict ``{"w", "c"}`` when
    ``container``)."""

    def __init__(self, rng, B=5, n=3, container=False):
        k = 2 * n
        self.M, self.n, self.container = rng.standard_normal((B, k, n)), n, container
        x = 0.3 * rng.standard_normal((B, k))
        c = rng.standard_normal((B, n))
        self.x = {"w": x, "c": c} if container else x
        self.c = None if container else c
        self.y0 = onp.zeros((B, n))

    def parts(self, x):
        return (x["w"], x["c"]) if self.container else (x, self.c)

    def f(self, x, y):
        w, c = self.parts(x)
        z = anp.einsum("bij,bj->bi", self.M, y) + w
        return lse(z, 1) + 0.5 * anp.sum(anp.exp(w[:, : self.n]) * y**2, 1) - anp.sum(c * y, 1)

    def single(self, b):
        M, n = self.M[b], self.n

        def f(x, y):
            w, c = (x["w"], x["c"]) if self.container else (x, self.c[b])
            z = anp.dot(M, y) + w
            return lse(z, 0) + 0.5 * anp.sum(anp.exp(w[:n]) * y**2) - anp.dot(c, y)

        return f

    def row(self, x, b):
        return {k: v[b] for k, v in x.items()} if self.container else x[b]


def problems(rng):
    return {
        "quadratic": QuadraticBatch(rng),
        "ridge": RidgeBatch(rng),
        "logsumexp": LogSumExpBatch(rng),
        "max": QuadraticBatch(rng, sign=-1.0),
    }


NAMES = ["quadratic", "ridge", "logsumexp", "max"]


def batch_fun(p, solver):
    mode = "max" if getattr(p, "sign", 1.0) < 0 else "min"
    return lambda x: argmin_batch(p.f, x, p.y0, mode=mode, solver=solver)


def single_fun(p, b, solver):
    fun = al.argmax if getattr(p, "sign", 1.0) < 0 else al.argmin
    return lambda xb: fun(p.single(b), xb, p.y0[b], solver=solver)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_batch_agrees_with_a_loop_of_single_problems(name, solver):
    """The answer and the Jacobian (block diagonal: zero across problems) of every lemma's
    batched form equal those of single ``argmin`` calls, problem by problem."""
    p = problems(onp.random.default_rng(1))[name]
    y = batch_fun(p, solver)(p.x)
    J = jacobian(batch_fun(p, solver))(p.x)  # (B, n, B, m)
    B = len(p.y0)
    for b in range(B):
        assert close(y[b], single_fun(p, b, solver)(p.x[b]), solver)
        Jb = jacobian(single_fun(p, b, solver))(p.x[b])
        assert close(J[b, :, b], Jb, solver)
        assert onp.all(J[b, :, onp.arange(B) != b] == 0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_container_x_hypergradient_agrees_with_loop(solver):
    """A dict ``x`` of arrays with leading axis B: the gradient of a loss over the whole
    batch has the dict's structure and equals the single problems' gradients row by row."""
    p = LogSumExpBatch(onp.random.default_rng(2), container=True)
    target = onp.random.default_rng(3).standard_normal(p.y0.shape)

    def loss(x):
        y = argmin_batch(p.f, x, p.y0, solver=solver)
        return 0.5 * anp.sum((y - target) ** 2)

    g = grad(loss)(p.x)
    assert set(g) == {"w", "c"} and g["w"].shape == p.x["w"].shape
    for b in range(len(p.y0)):

        def loss_b(xb, b=b):
            yb = al.argmin(p.single(b), xb, p.y0[b], solver=solver)
            return 0.5 * anp.sum((yb - target[b]) ** 2)

        gb = grad(loss_b)(p.row(p.x, b))
        assert close(g["w"][b], gb["w"], solver) and close(g["c"][b], gb["c"], solver)


@pytest.mark.parametrize("solver", SOLVERS)
def test_second_derivatives_against_finite_differences(solver):
    """The Hessian of a scalar loss through the batch (grad of grad, non-quadratic ``f``, so
    ``H_b`` depends on ``y``) equals central differences of its gradient."""
    p = LogSumExpBatch(onp.random.default_rng(4), B=3, n=2)
    target = onp.linspace(-1, 1, p.y0.size).reshape(p.y0.shape)

    def loss(x):
        y = argmin_batch(p.f, x, p.y0, solver=solver)
        return anp.sum(anp.sin(y - target) ** 2)

    Hx = jacobian(grad(loss))(p.x)
    fd = al.fd_jacobian(grad(loss), p.x, eps=1e-5)
    assert al.max_error(Hx, fd, relative=True) < 1e-6
    assert al.max_error(Hx.reshape(p.x.size, -1), Hx.reshape(p.x.size, -1).T) < 1e-9


@pytest.mark.parametrize("solver", SOLVERS)
def test_jvp_agrees_with_jacobian(solver):
    p = LogSumExpBatch(onp.random.default_rng(5))
    fun = batch_fun(p, solver)
    v = onp.random.default_rng(6).standard_normal(p.x.shape)
    _, jv = make_jvp(fun)(p.x)(v)
    J = jacobian(fun)(p.x)
    assert al.max_error(jv, onp.tensordot(J, v, axes=2), relative=True) < RTOL[solver]


def test_integer_and_list_inputs_are_read_as_floats():
    p = QuadraticBatch(onp.random.default_rng(7), B=3, n=2, m=2)
    xi = onp.array([[1, 2], [3, -1], [0, 2]])
    ref = argmin_batch(p.f, xi.astype(float), p.y0)
    assert onp.array_equal(argmin_batch(p.f, xi, onp.zeros((3, 2), dtype=int)), ref)
    assert onp.array_equal(argmin_batch(p.f, xi.tolist(), [[0, 0]] * 3), ref)


def test_forward_solver_answer_is_polished_and_checked():
    p = QuadraticBatch(onp.random.default_rng(8), B=4, n=3)
    exact = onp.linalg.solve(p.A, onp.einsum("bij,bj->bi", p.C, p.x)[..., None])[..., 0]
    near = argmin_batch(p.f, p.x, p.y0, forward=lambda f, x, y0: exact + 1e-5)
    assert al.max_error(near, exact) < 1e-14  # Newton steps of polish
    far = exact.copy()
    far[2] += 1e3

    def bad_forward(f, x, y0):  # a quartic: five Newton steps do not reach the answer
        return far

    quartic = lambda x, y: p.f(x, y) + anp.sum((y - exact) ** 4, 1)  # noqa: E731
    with pytest.raises(al.ForwardSolveError, match="problem 2 ") as err:
        argmin_batch(quartic, p.x, p.y0, forward=bad_forward)
    assert list(err.value.problems) == [2]
    with pytest.raises(al.ShapeError, match=r"returned shape \(4, 2\)"):
        argmin_batch(p.f, p.x, p.y0, forward=lambda f, x, y0: exact[:, :2])


# --- errors name the problem ----------------------------------------------------------------


def saddle_batch(B=50, bad=(17,), n=3, spectrum=(-1.0, 2.0, 3.0)):
    """A quadratic batch whose problems ``bad`` have Hessian eigenvalues ``spectrum``."""
    rng = onp.random.default_rng(9)
    p = QuadraticBatch(rng, B=B, n=n)
    Q = onp.linalg.qr(rng.standard_normal((n, n)))[0]
    for b in bad:
        p.A[b] = (Q * onp.array(spectrum)) @ Q.T
    rhs = onp.einsum("bij,bj->bi", p.C, p.x)
    stationary = onp.einsum("bij,bj->bi", onp.linalg.pinv(p.A, hermitian=True), rhs)
    p.C[list(bad)] = onp.einsum("bij,bj->bi", p.A[list(bad)], stationary[list(bad)])[:, :, None] * (
        p.x[list(bad)][:, None, :] / onp.sum(p.x[list(bad)] ** 2, 1)[:, None, None]
    )
    return p, (lambda f, x, y0: stationary)  # (rhs in the range of a singular A_b)


@pytest.mark.parametrize("solver", SOLVERS)
def test_saddle_in_one_problem_is_named(solver):
    p, forward = saddle_batch()
    with pytest.raises(al.CurvatureError, match="problem 17 of 50, y is a saddle") as err:
        argmin_batch(p.f, p.x, p.y0, forward=forward, solver=solver)
    assert "the only one of the 50 problems" in str(err.value) and list(err.value.problems) == [17]
    p, forward = saddle_batch(bad=(17, 30, 41))
    with pytest.raises(al.CurvatureError, match="problem 17 ") as err:
        argmin_batch(p.f, p.x, p.y0, forward=forward, solver=solver)
    assert "2 other problems of the 50 also fail the certificate: 30 (sign), 41 (sign)" in str(
        err.value
    )
    assert list(err.value.problems) == [17, 30, 41]


def test_saddle_default_forward_and_certify_false():
    p, forward = saddle_batch()
    # from y0 = 0, Newton leaves the saddle of the unbounded problem 17 and cannot converge
    with pytest.raises(al.ForwardSolveError, match="did not converge in problem 17 ") as err:
        argmin_batch(p.f, p.x, p.y0)
    assert list(err.value.problems) == [17]
    # certify=False accepts the stationary point; its derivative is -H^-1 f_YX there too
    J = jacobian(lambda x: argmin_batch(p.f, x, p.y0, forward=forward, certify=False))(p.x)
    assert al.max_error(J[17, :, 17], onp.linalg.solve(p.A[17], p.C[17])) < 1e-10


def test_maximum_when_a_minimum_is_claimed_and_vice_versa():
    p = QuadraticBatch(onp.random.default_rng(10), B=8)
    with pytest.raises(al.CurvatureError, match="problem 0 of 8, y is a local minimum, not a max"):
        argmax_batch(p.f, p.x, p.y0, forward=lambda f, x, y0: argmin_batch(f, x, y0))


@pytest.mark.parametrize(
    "spectrum, error, found",
    [
        ((0.0, 2.0, 3.0), al.SingularHessianError, "is singular"),
        ((1e-12, 2.0, 3.0), al.IllConditionedError, "is definite but ill-conditioned"),
    ],
)
@pytest.mark.parametrize("solver", SOLVERS)
def test_singular_and_ill_conditioned_blocks_are_named(spectrum, error, found, solver):
    p, forward = saddle_batch(bad=(17,), spectrum=spectrum)
    with pytest.raises(error, match=f"problem 17 of 50, its Hessian block f_YY\\[17\\] {found}"):
        argmin_batch(p.f, p.x, p.y0, forward=forward, solver=solver)


def test_badly_scaled_but_isolated_minimum_is_accepted_by_dense():
    """Weights 1e12 next to 1 (one problem): definite and well conditioned after scaling
    to a unit diagonal, which is what the factorised solve's accuracy depends on."""
    p = QuadraticBatch(onp.random.default_rng(11), B=4, n=2, m=2)
    p.A[1] = onp.diag([1e12, 1.0])
    J = jacobian(lambda x: argmin_batch(p.f, x, p.y0))(p.x)
    assert al.max_error(J[1, :, 1], onp.linalg.solve(p.A[1], p.C[1]), relative=True) < 1e-12
    # a Krylov solve meets the condition of H_b itself: CG refuses it and says what to do
    with pytest.raises(al.IllConditionedError, match="problem 1 of 4.*solver='dense' judges"):
        argmin_batch(p.f, p.x, p.y0, solver="cg")


@pytest.mark.parametrize(
    "solver, method", [("dense", "dense"), ("dense", "lanczos"), ("cg", "dense")]
)
def test_other_certificate_methods(solver, method):
    """Certify(method=...): the exact eigenvalues of every block, or the batched Lanczos
    run, with either solver: the same answer, and the same named saddle."""
    p = QuadraticBatch(onp.random.default_rng(17), B=5, n=3)
    J = jacobian(lambda x: argmin_batch(p.f, x, p.y0, solver=solver, certify=method))(p.x)
    assert close(J, jacobian(batch_fun(p, "dense"))(p.x), "cg")
    p, forward = saddle_batch(B=20, bad=(7,))
    with pytest.raises(al.CurvatureError, match="problem 7 of 20, y is a saddle"):
        argmin_batch(p.f, p.x, p.y0, solver=solver, certify=method, forward=forward)


def test_lanczos_certificate_for_cg_at_larger_n():
    """n = 30 > Certify.steps: CG's certificate is a batched Lanczos estimate; a saddle in
    one block is found, and a definite batch agrees with the dense solver."""
    rng = onp.random.default_rng(12)
    p = QuadraticBatch(rng, B=4, n=30, m=2)
    ok = jacobian(lambda x: argmin_batch(p.f, x, p.y0, solver="cg"))(p.x)
    ref = jacobian(lambda x: argmin_batch(p.f, x, p.y0))(p.x)
    assert al.max_error(ok, ref, relative=True) < 1e-6
    lam = onp.linspace(1.0, 4.0, 30)
    lam[0] = -0.5
    Q = onp.linalg.qr(rng.standard_normal((30, 30)))[0]
    p.A[2] = (Q * lam) @ Q.T
    y = onp.linalg.solve(p.A, onp.einsum("bij,bj->bi", p.C, p.x)[..., None])[..., 0]
    with pytest.raises(
        al.CurvatureError,
        match="problem 2 of 4, y is not a strict local minimum.*Lanczos estimates",
    ):
        argmin_batch(p.f, p.x, p.y0, solver="cg", forward=lambda f, x, y0: y)


def test_wrong_shapes_and_values_are_explained():
    p = QuadraticBatch(onp.random.default_rng(13), B=5, n=3)
    with pytest.raises(al.ShapeError, match=r"y0 has shape \(5,\); .* shape \(B, n\)"):
        argmin_batch(p.f, p.x, onp.zeros(5))
    with pytest.raises(al.ShapeError, match=r"y0 has shape \(5, 3, 1\)"):
        argmin_batch(p.f, p.x, onp.zeros((5, 3, 1)))
    with pytest.raises(al.ShapeError, match=r"x has shape \(4, 3\), but y0 has B = 5 rows"):
        argmin_batch(p.f, p.x[:4], p.y0)
    with pytest.raises(al.ShapeError, match=r"x\['a'\] has shape \(\)"):
        argmin_batch(lambda x, y: p.f(x["b"], y), {"a": 1.0, "b": p.x}, p.y0)
    with pytest.raises(al.ShapeError, match=r"returned shape \(\); .*expects shape \(5,\)"):
        argmin_batch(lambda x, y: anp.sum(p.f(x, y)), p.x, p.y0)
    with pytest.raises(al.ShapeError, match=r"returned shape \(5, 1\); .*expects shape \(5,\)"):
        argmin_batch(lambda x, y: p.f(x, y)[:, None], p.x, p.y0)
    x = p.x.copy()
    x[3, 1] = onp.nan
    with pytest.raises(al.NonFiniteError, match="x contains NaN or inf in problem 3 "):
        argmin_batch(p.f, x, p.y0)
    y0 = p.y0.copy()
    y0[[1, 4], 0] = onp.inf
    with pytest.raises(al.NonFiniteError, match="y0 .* problem 1 .*1 other problem of the 5"):
        argmin_batch(p.f, p.x, y0)
    with pytest.raises(al.InputError, match="solver='minres'"):
        argmin_batch(p.f, p.x, p.y0, solver="minres")
    with pytest.raises(al.InputError, match="mode='stationary'"):
        argmin_batch(p.f, p.x, p.y0, mode="stationary")


@pytest.mark.parametrize("solver", SOLVERS)
def test_coupled_problems_are_detected(solver):
    """Through the Hessian (dense: checked against the formed blocks; CG: two products)
    and through the mixed derivative (x of one problem in another's gradient)."""
    p = QuadraticBatch(onp.random.default_rng(14), B=6, n=3)

    def mixes_y(x, y):  # every f_b gets a term in y[0] and y[1]
        return p.f(x, y) + 0.1 * y[0, 0] * y[1, 2]

    with pytest.raises(al.InputError, match="gradient of problem 0 .*depends on other") as err:
        argmin_batch(mixes_y, p.x, p.y0, solver=solver)
    assert list(err.value.problems) == [0, 1]

    def next_x(x, y):  # f_b depends on x[b + 1] through y_b
        return p.f(x, y) + 0.3 * anp.sum(anp.roll(x, -1, axis=0) * y, 1)

    with pytest.raises(al.InputError, match=r"x\[0\] \(5 other problems of the 6 too: 1, 2"):
        argmin_batch(next_x, p.x, p.y0, solver=solver)

    def value_only(x, y):  # x[b + 1] enters f_b, but not its gradient in y: no coupling
        return p.f(x, y) + anp.sum(anp.roll(x, -1, axis=0) ** 2, 1)

    assert al.max_error(argmin_batch(value_only, p.x, p.y0), argmin_batch(p.f, p.x, p.y0)) == 0


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_errors_inside_f_and_non_finite_values_are_explained():
    p = QuadraticBatch(onp.random.default_rng(15), B=5, n=3)

    def wrong(x, y):
        return anp.sum(anp.dot(y, onp.ones((2, 2))), 1)

    with pytest.raises(al.InputError, match=r"f\(x, y0\) raised ValueError.*shape \(5, 3\)"):
        argmin_batch(wrong, p.x, p.y0)

    def log_barrier(x, y):  # log(1 - y) is NaN for y > 1
        return p.f(x, y) - anp.sum(anp.log(1.0 - y), 1)

    y0 = p.y0.copy()
    y0[3] = 2.0
    with pytest.raises(al.NonFiniteError, match=r"f\(x, y\) is NaN or inf in problem 3 "):
        argmin_batch(log_barrier, p.x, y0)


def test_one_problem_batch_equals_argmin():
    p = RidgeBatch(onp.random.default_rng(16), B=1)
    g = jacobian(lambda x: argmin_batch(p.f, x, p.y0)[0])(p.x)[:, 0]
    assert close(g, jacobian(single_fun(p, 0, "dense"))(p.x[0]), "dense")


@pytest.mark.parametrize("mode", ["min", "max"])
def test_argmin_batch_true_is_argmin_batch(mode):
    """``al.argmin(..., batch=True)`` (and argmax) is this module's primitive: the same
    answer and gradient as a loop of single problems; options it does not support are
    refused by name."""
    rng = onp.random.default_rng(5)
    B, n = 6, 3
    M = rng.standard_normal((B, n, n))
    s = 1.0 if mode == "min" else -1.0
    A = s * (M @ M.transpose(0, 2, 1) + 3 * onp.eye(n))

    def f(x, y):
        return 0.5 * anp.einsum("bi,bij,bj->b", y, A, y) - anp.sum(x * y, axis=1)

    solve = al.argmin if mode == "min" else al.argmax
    x = rng.standard_normal((B, n))
    y = solve(f, x, onp.zeros((B, n)), batch=True)
    assert al.max_error(y, onp.linalg.solve(A, x[..., None])[..., 0], relative=True) < 1e-12

    def loss(x_):
        return anp.sum(solve(f, x_, onp.zeros((B, n)), batch=True, solver="cg") ** 2)

    def single(b):
        def f_b(xb, yb):
            return 0.5 * anp.dot(yb, anp.dot(A[b], yb)) - anp.dot(xb, yb)

        return f_b

    def loop(x_):
        return sum(anp.sum(solve(single(b), x_[b], onp.zeros(n)) ** 2) for b in range(B))

    assert al.max_error(grad(loss)(x), grad(loop)(x), relative=True) < 1e-6
    for option in ({"eq": lambda x_, y_: y_}, {"return_info": True}, {"bounds": (0, 1)}):
        with pytest.raises(al.InputError, match="batch=True does not support"):
            solve(f, x, onp.zeros((B, n)), batch=True, **option)
