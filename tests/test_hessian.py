"""User Hessians (hess, hessp, hess_sparsity), the Sparse solver and the named
preconditioners: every path against the dense autograd path and finite differences, and
every wrong input refused."""

import sys
from pathlib import Path

import autograd.numpy as anp
import numpy as onp
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from autograd import grad, hessian, jacobian, make_jvp

import argminlib as al

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from conftest import FixedQuadratic  # noqa: E402
from problems import Chain, Ridge, upper  # noqa: E402

N = 30


@pytest.fixture(scope="module")
def chain():
    return Chain(N, seed=3)


def loss(p, **options):
    L = upper(p)
    return lambda x: L(al.argmin(p.f, x, p.y0, forward=p.forward, **options))


def options(p, which):
    return {
        "hess-sparse": dict(hess=p.hess, solver="sparse"),
        "hess-cg": dict(hess=p.hess, solver="cg"),
        "hess-dense": dict(hess=p.hess, solver="dense"),
        "hessp-cg": dict(hessp=p.hessp, solver="cg"),
        "hessp-minres": dict(hessp=p.hessp, solver="minres"),
        "pattern-sparse": dict(hess_sparsity=p.hess_sparsity, solver="sparse"),
        "pattern-cg": dict(hess_sparsity=p.hess_sparsity, solver="cg"),
        "pattern-hessp": dict(hess_sparsity=p.hess_sparsity, hessp=p.hessp, solver="sparse"),
        "pattern-ilu": dict(hess_sparsity=p.hess_sparsity, solver=al.CG(preconditioner="ilu")),
        "pattern-banded": dict(hess_sparsity=p.hess_sparsity, solver=al.Sparse("banded")),
        "pattern-splu": dict(hess_sparsity=p.hess_sparsity, solver=al.Sparse("splu")),
        "jacobi-estimated": dict(solver=al.CG(preconditioner="jacobi")),
    }[which]


WHICH = [
    "hess-sparse",
    "hess-cg",
    "hess-dense",
    "hessp-cg",
    "hessp-minres",
    "pattern-sparse",
    "pattern-cg",
    "pattern-hessp",
    "pattern-ilu",
    "pattern-banded",
    "pattern-splu",
    "jacobi-estimated",
]


@pytest.mark.parametrize("which", WHICH)
def test_hypergradient_matches_analytic_and_dense(chain, which):
    g = grad(loss(chain, **options(chain, which)))(chain.x)
    ref = chain.hypergradient(chain.x)
    assert onp.allclose(g, ref, rtol=1e-7, atol=1e-10)
    dense = grad(loss(chain, solver="dense"))(chain.x)
    assert onp.allclose(g, dense, rtol=1e-7, atol=1e-10)


def test_hypergradient_matches_finite_differences(chain):
    fun = loss(chain, hess_sparsity=chain.hess_sparsity, solver="sparse")
    g = grad(fun)(chain.x)
    assert al.max_error(g, al.fd_grad(fun, chain.x, 1e-6)) < 1e-6


@pytest.mark.parametrize("which", ["hess-sparse", "pattern-sparse", "hessp-cg", "hess-dense"])
def test_second_derivatives_still_exact(which):
    p = Chain(8, seed=1)
    fun = loss(p, **options(p, which))
    H = hessian(fun)(p.x)
    H_ref = hessian(loss(p, solver="dense"))(p.x)
    assert onp.allclose(H, H_ref, rtol=1e-6, atol=1e-9)
    H_fd = al.fd_jacobian(grad(fun), p.x, 1e-5)
    assert onp.allclose(H, H_fd, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("which", ["hess-sparse", "pattern-sparse", "hessp-cg"])
def test_jacobian_jvp_vjp(chain, which):
    opts = options(chain, which)
    prob = al.Unconstrained(chain.f, chain.y0, forward=chain.forward, **opts)
    y = chain.solution(chain.x)
    J = prob.jacobian(chain.x, y)
    J_ref = al.implicit_jacobian(chain.f, chain.x, y)
    assert onp.allclose(J, J_ref, atol=1e-9)
    assert onp.allclose(jacobian(prob)(chain.x), J_ref, atol=1e-9)
    v = onp.linspace(-1, 1, N - 1)
    assert onp.allclose(prob.jvp(chain.x, y, v), J_ref @ v, atol=1e-9)
    assert onp.allclose(prob.vjp(chain.x, y, onp.ones(N)), onp.ones(N) @ J_ref, atol=1e-9)


def test_argmax_with_sparse_hessian(chain):
    def g(x, y):
        return -chain.f(x, y)

    def hess(x, y):
        return -chain.hess(x, y)

    y_min = al.argmin(chain.f, chain.x, chain.y0, forward=chain.forward)
    y, J = (
        al.argmax(g, chain.x, chain.y0, forward=chain.forward, hess=hess, solver="sparse"),
        jacobian(lambda x: al.argmax(g, x, chain.y0, hess=hess, solver="sparse"))(chain.x),
    )
    assert onp.allclose(y, y_min)
    assert onp.allclose(J, al.implicit_jacobian(chain.f, chain.x, y), atol=1e-9)


def test_ridge_dense_hess_and_linear_operator():
    p = Ridge(12, seed=2)
    ref = p.hypergradient(p.x)
    for opts in (
        dict(hess=p.hess),
        dict(hess=lambda x, y: spla.aslinearoperator(p.hess(x, y)), solver="cg"),
        dict(hessp=p.hessp, solver="cg"),
    ):
        assert onp.allclose(grad(loss(p, **opts))(p.x), ref, rtol=1e-7, atol=1e-12)


def test_certificate_by_cholesky(chain):
    prob = al.Unconstrained(chain.f, chain.y0, hess=chain.hess, solver="sparse")
    y = chain.solution(chain.x)
    _, info = prob.jacobian(chain.x, y, return_info=True)
    cert = info.certificate
    assert cert.method == "cholesky-pttrf"
    H = chain.hess(chain.x, y).toarray()
    eig = onp.linalg.eigvalsh(H)
    assert 0 < cert.lowest <= eig[0]  # lam_min(D A D) min(a_ii): a lower bound
    assert cert.highest >= eig[-1]  # Gershgorin: a bound
    d = 1.0 / onp.sqrt(onp.diag(H))
    seig = onp.linalg.eigvalsh(d[:, None] * H * d)  # judged on the scaled matrix: two
    # steps of inverse iteration from a random probe, an estimate from above, of the order
    # of magnitude the conditioning judgement needs (here the low end is clustered)
    assert seig[0] * (1 - 1e-12) <= cert.scaled[0] <= 10 * seig[0]
    assert cert.scaled[1] >= seig[-1]


def saddle(x, y):
    return 0.5 * anp.sum(x * y**2) - 0.5 * y[0] ** 2 * 3.0


def test_sparse_certificate_refuses_a_saddle():
    x = onp.ones(4)
    prob = al.Unconstrained(saddle, onp.zeros(4), hess_sparsity=sp.eye(4), solver="sparse")
    with pytest.raises(al.CurvatureError, match="saddle"):
        prob.vjp(x, onp.zeros(4), onp.ones(4))


def test_wrong_hess_is_named():
    p = Chain(10)

    def bad_hess(x, y):
        return p.hess(x, y) * 1.01

    with pytest.raises(al.HessianMismatchError, match="hess") as err:
        al.argmin(p.f, p.x, p.y0, forward=p.forward, hess=bad_hess, solver="sparse")
    assert err.value.argument == "hess"

    def bad_hessp(x, y, v):
        return p.hessp(x, y, v) + 1e-3 * v

    with pytest.raises(al.HessianMismatchError) as err:
        al.argmin(p.f, p.x, p.y0, forward=p.forward, hessp=bad_hessp, solver="cg")
    assert err.value.argument == "hessp"

    with pytest.raises(al.HessianMismatchError) as err:  # misses the off-diagonals
        al.argmin(p.f, p.x, p.y0, forward=p.forward, hess_sparsity=sp.eye(10), solver="sparse")
    assert err.value.argument == "hess_sparsity"
    assert isinstance(err.value, al.ArgminError)


@pytest.mark.parametrize(
    "opts, error",
    [
        (dict(solver="sparse"), al.InputError),  # nothing to factorise
        (dict(solver=al.CG(preconditioner="ilu")), al.InputError),
        (dict(hess="H"), al.InputError),
        (dict(hess=lambda x, y: onp.ones((3, 3))), al.ShapeError),
        (dict(hessp=lambda x, y, v: onp.ones(2)), al.ShapeError),
        (dict(hess_sparsity=onp.ones((2, 2))), al.sparse.SparsityError),
        (dict(hess=lambda x, y: onp.full((10, 10), onp.nan)), al.NonFiniteError),
    ],
)
def test_bad_input(opts, error):
    p = Chain(10)
    with pytest.raises(error):
        al.argmin(p.f, p.x, p.y0, forward=p.forward, **opts)


def test_constraints_refuse_user_hessians():
    p = Chain(6)
    with pytest.raises(al.InputError, match="unconstrained"):
        al.argmin(p.f, p.x, p.y0, eq=lambda x, y: anp.sum(y), hess=p.hess)
    with pytest.raises(al.InputError):
        al.CG(preconditioner="magic")
    with pytest.raises(al.InputError):
        al.Sparse("magic")


def test_dense_cholesky_certificate_for_an_assembled_hessian():
    p = Ridge(15, seed=5)
    prob = al.Unconstrained(p.f, p.y0, hess=p.hess)
    y = p.solution(p.x)
    _, info = prob.vjp(p.x, y, y, return_info=True)
    cert = info.certificate
    assert cert.method == "cholesky"
    eig = onp.linalg.eigvalsh(p.hess(p.x, y))
    assert cert.lowest <= 1.0001 * eig[0] and cert.highest >= eig[-1]  # 1-norm bounds

    def hess_saddle(x, y):
        return onp.diag([1.0, -1.0, 2.0])

    def f_saddle(x, y):
        return 0.5 * (y[0] ** 2 - y[1] ** 2 + 2 * y[2] ** 2) + x * y[0]

    with pytest.raises(al.CurvatureError, match="saddle"):
        al.Unconstrained(f_saddle, onp.zeros(3), hess=hess_saddle).vjp(
            0.0, onp.zeros(3), onp.ones(3)
        )


def test_dense_cholesky_certificate_for_a_large_system():
    p = Ridge(500, seed=6)
    prob = al.Unconstrained(p.f, p.y0, solver="dense")
    y = p.solution(p.x)
    g, info = prob.vjp(p.x, y, y - p.y_val, return_info=True)
    assert info.certificate.method == "cholesky"
    assert onp.allclose(g, p.hypergradient(p.x), rtol=1e-8, atol=1e-12)
    small = al.Unconstrained(p.f, p.y0, solver="dense", certify="dense")
    _, info = small.vjp(p.x, y, y - p.y_val, return_info=True)
    assert info.certificate.method == "dense" and info.certificate.exact


def _wrong_along_e7(q, size=5e-6):
    """A hessp wrong by ``size`` along one coordinate only (entry 7)."""
    e = onp.zeros(q.A.shape[0])
    e[7] = 1.0
    return e, lambda x, y, v: q.A @ v + size * (e @ v) * e


def test_adjoint_solve_checked_in_reverse_mode():
    """A hessp wrong only along one direction, too weakly for the random-vector check of the
    forward pass to see it, is caught by the free check of the adjoint solve when the
    cotangent points along that direction (the derivative it would spoil)."""
    n = 400
    q = FixedQuadratic(n, spectrum=onp.linspace(1.0, 3.0, n))
    _, hessp = _wrong_along_e7(q)
    opts = dict(solver="cg", forward=q.forward)
    y = al.argmin(q.f, q.x, onp.zeros(n), hessp=hessp, **opts)  # the forward checks pass
    assert onp.allclose(y, q.y(q.x))
    with pytest.raises(al.HessianMismatchError):
        grad(lambda x: al.argmin(q.f, x, onp.zeros(n), hessp=hessp, **opts)[7])(q.x)
    # the same with a correct hessp: the check passes and the gradient is exact
    right = lambda x, y, v: q.A @ v  # noqa: E731
    g = grad(lambda x: al.argmin(q.f, x, onp.zeros(n), hessp=right, **opts)[7])(q.x)
    assert onp.allclose(g, q.jacobian()[7], rtol=1e-8)


def test_stiff_direction_error_caught_with_factorising_solver():
    """Hostile review: a dense hess wrong by 3e-5 along its stiffest direction only; the
    probe-residual check alone weighs it by 1/curvature and missed it (a 3e-5 wrong
    derivative), so the one check product also carries a random vector."""
    n = 400
    diag = onp.ones(n)
    diag[3] = 1e4

    def f(x, y):
        return 0.5 * anp.sum(diag * y**2) - anp.dot(x, y)

    def hess(x, y):
        H = onp.diag(diag)
        H[3, 3] *= 1 + 3e-5
        return H

    x = onp.linspace(1.0, 2.0, n)
    with pytest.raises(al.HessianMismatchError):
        al.argmin(f, x, onp.zeros(n), hess=hess, forward=lambda f_, x_, y0: x_ / diag)


def test_low_direction_error_caught_in_forward_mode_at_large_n():
    """Hostile review: at n = 5000 the Lanczos run does not reorthogonalise fully; it must
    still keep the lowest Ritz vector when a user hessp is to be checked along it (a
    forward-mode JVP gets no adjoint check)."""
    n = 5000
    diag = onp.linspace(0.01, 10.0, n)
    diag[0] = 0.0025

    def f(x, y):
        return 0.5 * anp.sum(diag * y**2) - anp.dot(x, y)

    def hessp(x, y, v):
        d = diag.copy()
        d[0] = 0.0026  # 4% off along e_0, invisible to a random vector
        return d * v

    x = onp.linspace(1.0, 2.0, n)
    with pytest.raises(al.HessianMismatchError):
        al.argmin(
            f,
            x,
            onp.zeros(n),
            hessp=hessp,
            solver="cg",
            certify=al.Certify(max_steps=800),
            forward=lambda f_, x_, y0: x_ / diag,
        )


def test_failed_adjoint_check_is_not_remembered_as_passed():
    """Hostile review: a second VJP on the same Solution after the check raised must be
    checked again, not served unchecked."""
    n = 400
    q = FixedQuadratic(n, spectrum=onp.linspace(1.0, 3.0, n))
    e, hessp = _wrong_along_e7(q)
    sol = al.Unconstrained(q.f, onp.zeros(n), solver="cg", hessp=hessp).at(q.x, q.y(q.x))
    for _ in range(2):
        with pytest.raises(al.HessianMismatchError):
            sol.vjp(e)


# --- a wrong user Hessian is named, every solve with it is checked, v is read-only -------


@pytest.mark.parametrize("solver", ["dense", "cg", "minres", "sparse"])
@pytest.mark.parametrize(
    "wrong",
    [
        lambda H, v: -(H @ v),  # the sign flipped: looks like a maximum
        lambda H, v: H @ v - 1.5 * v,  # shifted: looks like a saddle
        lambda H, v: onp.full(v.shape, onp.nan),  # NaN
    ],
    ids=["flipped", "shifted", "nan"],
)
def test_grossly_wrong_hessp_is_named_not_blamed_on_the_curvature(solver, wrong):
    """A wrong hessp made the certificate (computed from it) report a maximum or a saddle,
    or scipy a bare ValueError on NaN: the error must name the wrong argument."""
    q = FixedQuadratic(30, spectrum=onp.linspace(1.0, 3.0, 30))
    kw = dict(hess_sparsity=onp.ones((30, 30))) if solver == "sparse" else {}
    with pytest.raises(al.HessianMismatchError, match="hessp") as err:
        al.argmin(
            q.f,
            q.x,
            onp.zeros(30),
            solver=solver,
            hessp=lambda x, y, v: wrong(q.A, v),
            forward=q.forward,
            **kw,
        )
    assert "NaN" in str(err.value) or "differs" in str(err.value)


def _wrong_only_along_e0(n):
    """``f = 1/2 sum d y^2 - x.y``; a hessp wrong (by 2%) only along e_0, the lowest
    curvature: invisible to a random vector (relative error 2e-7)."""
    d = onp.ones(n)
    d[0], d[1] = 5e-4, 5.5e-4
    wrong = d.copy()
    wrong[0] = 5.1e-4

    def f(x, y):
        return 0.5 * anp.sum(d * y**2) - anp.dot(x, y)

    return f, (lambda x, y, v: wrong * v), (lambda f_, x_, y0: x_ / d)


@pytest.mark.parametrize("solver", ["cg", "minres"])
def test_forward_mode_checks_its_solve_with_a_user_hessp(solver):
    """The first JVP of a solution checks its solve against one autograd product, as the
    first VJP does for free: a hessp wrong along the direction the JVP needs gave 1428.57
    instead of 2000 at n = 1e5 in forward mode (hostile review); here without the
    certificate's direction check, which would see this error."""
    n = 2000
    f, hessp, fwd = _wrong_only_along_e0(n)
    x, v = onp.ones(n), onp.zeros(n)
    v[0] = 1.0
    with pytest.raises(al.HessianMismatchError):
        make_jvp(
            lambda x_: al.argmin(
                f, x_, onp.zeros(n), solver=solver, hessp=hessp, forward=fwd, certify=False
            )
        )(x)(v)
    prob = al.Unconstrained(f, onp.zeros(n), solver=solver, hessp=hessp, forward=fwd, certify=False)
    with pytest.raises(al.HessianMismatchError):
        prob.jvp(x, x * 0 + 1.0 / onp.r_[5e-4, 5.5e-4, onp.ones(n - 2)], v)
    good = lambda x_, y, w: onp.r_[5e-4, 5.5e-4, onp.ones(n - 2)] * w  # noqa: E731
    _, t = make_jvp(
        lambda x_: al.argmin(
            f, x_, onp.zeros(n), solver=solver, hessp=good, forward=fwd, certify=False
        )
    )(x)(v)
    assert t[0] == pytest.approx(2000.0, rel=1e-8)


def test_user_hessian_check_is_not_fooled_by_a_nan_autograd_hessian():
    """|y - 2|^1.5 has no finite second derivative at its kink: a correct hessp (inf there
    too) was blamed (HessianMismatchError); it is the point that has no Hessian."""
    n = 30

    def f(x, y):
        return 0.5 * anp.sum(y**2) - x * anp.sum(y) + anp.sum(anp.abs(y - 2.0) ** 1.5)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for solver in ("cg", "dense"):
            with pytest.raises(al.NonFiniteError):
                al.argmin(
                    f,
                    2.0,
                    onp.zeros(n),
                    solver=solver,
                    hessp=lambda x, y, v: (1.0 + 0.75 / onp.sqrt(onp.abs(y - 2.0))) * v,
                    forward=lambda f_, x_, y0: onp.full(n, 2.0),
                )


def _wrong_along_e5(n=20):
    """``f = 1/2 sum d y^2 - x.y`` with low curvatures 5e-4 (e_0) and 6e-4 (e_5), the rest
    1e3, and the diagonal of a hessp wrong along e_5 only (9e-4): a random vector misses it,
    and it is not the lowest direction."""
    d = 1e3 * onp.ones(n)
    d[0], d[5] = 5e-4, 6e-4
    wrong = d.copy()
    wrong[5] = 9e-4

    def f(x, y):
        return 0.5 * anp.sum(d * y**2) - anp.dot(x, y)

    return n, d, f, wrong


@pytest.mark.parametrize("solver", ["cg", "minres"])
def test_every_solve_with_a_user_hessp_is_checked(solver):
    """Only the first solve of a Solution was checked: a hessp wrong along e_5 (a low but
    not the lowest curvature) passed a JVP along e_0, and the JVP along e_5, the VJP, the
    Jacobian (Solution.jacobian, autograd.jacobian) came back 33% wrong (hostile review)."""
    n, d, f, wrong = _wrong_along_e5()

    x, e = onp.ones(n), onp.eye(n)
    prob = al.Unconstrained(f, onp.zeros(n), solver=solver, hessp=lambda x_, y, v: wrong * v)
    sol = prob.at(x, x / d)
    assert sol.jvp(e[0])[0] == pytest.approx(1 / 5e-4)  # correct along e_0
    with pytest.raises(al.HessianMismatchError):
        sol.jvp(e[5])
    with pytest.raises(al.HessianMismatchError):
        sol.vjp(e[5])
    with pytest.raises(al.HessianMismatchError):
        prob.at(x, x / d).jacobian()
    g = lambda x_: al.argmin(  # noqa: E731
        f,
        x_,
        onp.zeros(n),
        solver=solver,
        hessp=lambda x_, y, v: wrong * v,
        forward=lambda f_, xx, y0: xx / d,
    )
    with pytest.raises(al.HessianMismatchError):
        jacobian(g)(x)


def test_minimum_norm_checks_the_users_product_not_the_residual():
    """With lstsq a cotangent with a null-space part leaves a large solve residual, which
    loosened the check's tolerance to nothing: a hessp wrong along e_1 passed (hostile
    review; the random check at the solution cannot see an error of 3e-4 next to 1e3)."""
    d4 = onp.array([5e-4, 6e-4, 1e3, 1e3])
    wrong = onp.append(d4, 0.0)
    wrong[1] = 9e-4  # y_4 is a flat (null) direction

    def f(x, y):
        return 0.5 * anp.sum(d4 * y[:4] ** 2) - anp.dot(x, y[:4])

    x = onp.ones(4)
    prob = al.Unconstrained(f, onp.zeros(5), solver="lstsq", hessp=lambda x_, y, v: wrong * v)
    with pytest.raises(al.HessianMismatchError):
        prob.vjp(x, onp.append(x / d4, 0.0), onp.array([0, 1.0, 0, 0, 1.0]))


def test_factorised_user_hessian_is_checked_at_the_solution():
    """With a factorising solver the check at the solution, the residual of a solve with a
    random right-hand side, sees the error along e_5 that a random vector misses."""
    n, d, f, wrong = _wrong_along_e5()

    for solver in ("dense", "cholesky"):
        with pytest.raises(al.HessianMismatchError):
            al.Unconstrained(f, onp.zeros(n), solver=solver, hessp=lambda x_, y, v: wrong * v).at(
                onp.ones(n), onp.ones(n) / d
            )


def test_every_solve_is_checked_with_a_factorising_solver_too():
    """A hess with one diagonal entry 1e-4 too large can pass the check at the solution
    where the random probe is small there (16 of 100 coordinates at n = 400); checking only the
    first solve of a factorisation returned a Jacobian wrong by 1e-4 there (hostile review,
    fourth round), so every solve is checked."""
    n = 400
    lam = onp.logspace(-2, 0, n)[onp.random.default_rng(7).permutation(n)]

    def f(x, y):
        return 0.5 * anp.sum(lam * y**2) - anp.dot(x, y)

    lh = lam.copy()
    lh[39] *= 1 + 1e-4  # invisible to the probe at the solution
    x = onp.linspace(1.0, 2.0, n)
    fwd = lambda f_, xx, yy: onp.asarray(xx) / lam  # noqa: E731
    try:  # the check at the solution sees e_39 only as much as its random probe does
        y = al.argmin(f, x, onp.zeros(n), hess=lambda x_, y_: onp.diag(lh), forward=fwd)
    except al.HessianMismatchError as err:  # (the session's probe had weight on e_39)
        assert err.argument == "hess" and err.difference > al.hessian.CHECK_RTOL
    else:  # (it had too little): the plain value, exact, is all that was returned
        assert onp.allclose(y, x / lam, rtol=1e-12, atol=0)
    with pytest.raises(al.HessianMismatchError):  # the Jacobian's solves see it, always
        jacobian(
            lambda xx: al.argmin(f, xx, onp.zeros(n), hess=lambda x_, y_: onp.diag(lh), forward=fwd)
        )(x)


@pytest.mark.parametrize("solver", ["dense", "cg", "sparse"])
def test_hessp_that_writes_into_its_argument_is_refused(chain, solver):
    """v may be a Krylov solver's work vector (scipy's CG passes its own) or a cached test
    vector: a hessp that writes into it corrupted CG's iteration (a LinearSolveError after
    maxiter, naming the wrong cause). It gets a read-only view, and the error says why."""
    p = chain

    def hessp(x, y, v):
        v *= 2.0
        return p.hessp(x, y, v) / 2.0

    opts = dict(hessp=hessp, solver=solver)
    if solver == "sparse":
        opts["hess_sparsity"] = p.hess_sparsity
    with pytest.raises(al.InputError, match="writes into a read-only array, most likely its"):
        grad(loss(p, **opts))(p.x)


@pytest.mark.parametrize("solver", ["gmres", "cg", "minres", "dense"])
@pytest.mark.parametrize("kind", ["hessp", "linear operator"])
def test_a_product_that_returns_its_argument(solver, kind):
    """f_YY = I: ``hessp = lambda x, y, v: v`` (or an identity LinearOperator) is right, and
    its output is v itself, a solver's work vector that scipy's GMRES writes into next (a
    raw ValueError on the read-only view; before that, a GMRES that did not converge)."""
    f = lambda x, y: 0.5 * anp.sum((y - x) ** 2)  # noqa: E731
    extra = (
        dict(hessp=lambda x, y, v: v)
        if kind == "hessp"
        else dict(hess=lambda x, y: spla.aslinearoperator(sp.eye(5)))
    )
    g = grad(lambda x: anp.sum(al.argmin(f, x, onp.zeros(5), solver=solver, **extra) ** 2))
    x = onp.linspace(-1, 1, 5)
    assert onp.allclose(g(x), 2 * x, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("solver", ["cg", "minres"])
def test_a_linear_operator_that_writes_into_its_argument_is_refused(solver):
    p = Chain(N, seed=3)

    def hess(x, y):
        def matvec(v):
            v *= 1.0  # writes into the solver's vector
            return p.hessp(x, y, v)

        return spla.LinearOperator((N, N), matvec=matvec, dtype=float)

    with pytest.raises(al.InputError, match="writes into a read-only array"):
        grad(loss(p, hess=hess, solver=solver))(p.x)


@pytest.mark.parametrize("which", ["hess", "hessp"])
@pytest.mark.parametrize("solver", ["dense", "lu"])
def test_user_hessian_of_one_variable_is_not_a_false_alarm(which, solver):
    """n = 1: the probe's residual b and the random part s A r of the check could cancel
    exactly (opposite signs), leaving a comparison of rounding with zero
    (HessianMismatchError for a right Hessian); s now takes the sign that adds them."""
    f = lambda x, y: 0.5 * anp.sum((y - x) ** 2) + 0.25 * anp.sum(y**4)  # noqa: E731
    extra = (
        dict(hess=lambda x, y: onp.diag(1 + 3 * y**2))
        if which == "hess"
        else dict(hessp=lambda x, y, v: v + 3 * y**2 * v)
    )
    x = onp.array([0.7])
    y = al.argmin(f, x, onp.zeros(1), solver=solver, **extra)
    assert abs(y[0] + y[0] ** 3 - 0.7) < 1e-12
    g = grad(lambda x: al.argmin(f, x, onp.zeros(1), solver=solver, **extra)[0])(x)
    assert onp.allclose(g, 1 / (1 + 3 * y**2), rtol=1e-10)


# --- a user Hessian wrong where it matters, and the rounding its check allows --------------


@pytest.mark.parametrize("solver", ["dense", "cg", "minres"])
def test_user_hessian_wrong_in_low_curvature_directions(solver):
    """Hostile review (second round): a hess that forgot the ``+ lam I`` is wrong mostly in
    the low-curvature direction (curvature 1 against 3e3), which a random probe hardly sees:
    refused; with the term, the gradient equals autograd's."""
    rng = onp.random.default_rng(0)
    U = onp.linalg.qr(rng.normal(size=(50, 50)))[0]
    X = U @ onp.diag(onp.r_[1.0, onp.full(49, 3e3)]) @ U.T
    t = rng.normal(size=50)

    def f(lam, y):
        return 0.5 * anp.sum((X @ y - t) ** 2) + 0.5 * lam * anp.sum(y**2)

    def loss(lam, hess):
        return anp.sum(al.argmin(f, lam, onp.zeros(50), hess=hess, solver=solver))

    with pytest.raises(al.HessianMismatchError):  # forgot the + lam I
        grad(lambda lam: loss(lam, lambda lam, y: X.T @ X))(1.0)
    g = grad(lambda lam: loss(lam, lambda lam, y: X.T @ X + lam * onp.eye(50)))(1.0)
    assert g == pytest.approx(grad(lambda lam: loss(lam, None))(1.0), rel=1e-7)


@pytest.mark.parametrize("seed", range(8))
def test_solve_check_allows_the_rounding_of_an_ill_conditioned_product(seed):
    """Hostile review (fourth round): lstsq, a correct hessp, condition 3e10 accepted by
    Certify(rcond=1e-12): the check of each solve raised HessianMismatchError (1.5e-6) on
    rounding alone. The two products of a w of size 1/lambda_min differ by 1e-6 to 2.4e-6
    (relative) from rounding, above the check's 1e-6; the check's allowance for rounding
    (``10 sqrt(n) eps |A| |w| / rtol``) puts them at 1e-2 of it or less, on every BLAS
    kernel and seed: accepted, and the VJP along the flattest direction is right within 10
    eps cond = 6.7e-5 (at most 1.8e-6 is observed).

    The acceptance tolerance is stated: at condition 3e10 the Newton step of any y carries
    about eps cond |y| = 7e-6 |y| of rounding, so the default tol = 1e-6 refuses about one
    y in ten (NotStationaryError, a step of 1.5e-6 to 5e-6) depending on the BLAS kernel,
    whatever the check does; tol = 1e-4 leaves this test to the check."""
    n = 10
    rng = onp.random.default_rng(seed)
    Q = onp.linalg.qr(rng.standard_normal((n, n)))[0]
    dd = onp.logspace(0, -onp.log10(3e10), n)
    H = 0.5 * ((Q * dd) @ Q.T + ((Q * dd) @ Q.T).T)

    def f(x_, y):
        return 0.5 * anp.dot(y, anp.dot(H, y)) - anp.dot(x_, y)

    x = H @ rng.standard_normal(n)
    ys = onp.linalg.pinv(H, rcond=1e-14) @ x
    sol = al.Unconstrained(
        f,
        onp.zeros(n),
        solver="lstsq",
        certify=al.Certify(rcond=1e-12),
        tol=1e-4,
        hessp=lambda a, b, v: Q @ (dd * (Q.T @ v)),
    ).at(x, ys)
    g = sol.vjp(Q[:, -1])
    want = onp.linalg.pinv(H, rcond=1e-14) @ Q[:, -1]
    allowance = 10 * onp.finfo(float).eps * 3e10
    assert onp.linalg.norm(g - want) <= allowance * onp.linalg.norm(want)


def _badly_scaled_blocks(n=10, wrong=0.0):
    """Blocks [[1e12, 1e6], [1e6, 1 + 2^-20]] (condition of D A D about 4e6): ``f``, the exact
    ``A``, a user Hessian ``W`` with its entry (1, 1) off by ``wrong``, and ``A^{-1}``."""
    blk = onp.array([[1e12, 1e6], [1e6, 1 + 2.0**-20]])
    A = onp.kron(onp.eye(n // 2), blk)
    W = A.copy()
    W[1, 1] += wrong
    return (lambda x, y: 0.5 * anp.dot(y, anp.dot(A, y)) - anp.dot(x, y)), A, W  # noqa: E731


@pytest.mark.parametrize("how", ["dense", "sparse", "sparsity"])
def test_an_exact_hessian_of_a_badly_scaled_minimum_is_accepted(how):
    """Hostile review of issue 17: the exact Hessian of this isolated minimum was refused
    (sparse: a normwise residual of 4e-5, HessianMismatchError from a normwise rounding
    floor). The sparse solve is judged by its componentwise backward error and the check by
    an entrywise rounding bound: accepted, with the derivative right."""
    n = 10
    f, A, W = _badly_scaled_blocks(n)
    Ai = onp.linalg.inv(A)
    x = onp.linspace(0.5, 1.5, n)
    kw = {
        "dense": {"solver": "dense", "hess": lambda *_: A},
        "sparse": {"solver": "sparse", "hess": lambda *_: sp.csr_matrix(A)},
        "sparsity": {"solver": "sparse", "hess_sparsity": A != 0},
    }[how]
    J = jacobian(lambda x_: al.argmin(f, x_, onp.zeros(n), forward=lambda *_: Ai @ x, **kw))(x)
    assert onp.max(onp.abs(J - Ai)) <= 1e-8 * onp.max(onp.abs(Ai))


@pytest.mark.parametrize("solver", ["dense", "sparse"])
def test_a_hessian_wrong_below_the_rounding_of_its_largest_row_is_refused(solver):
    """One entry off by 2^-30 moves this derivative by 1e-3; the rounding of the rows of
    entries 1e12 (2e-4) must not hide it in the row of entries 1."""
    n = 10
    f, A, W = _badly_scaled_blocks(n, wrong=2.0**-30)
    Ai = onp.linalg.inv(A)
    x = onp.linspace(0.5, 1.5, n)
    hess = (lambda *_: sp.csr_matrix(W)) if solver == "sparse" else (lambda *_: W)
    with pytest.raises(al.HessianMismatchError):
        jacobian(
            lambda x_: al.argmin(
                f, x_, onp.zeros(n), solver=solver, hess=hess, forward=lambda *_: Ai @ x
            )
        )(x)


@pytest.mark.parametrize("argument", ["hess", "hessp"])
@pytest.mark.parametrize("solver", ["dense", "cholesky", "lu", "lstsq", "cg", "minres", "gmres"])
def test_a_wrong_hessian_beside_a_stiff_variable_is_found(solver, argument):
    """Hostile review of issue 17: one variable 1e4 times stiffer than the rest (condition
    1e8, inside every solver's limit) dominates the norm of any product, so a normwise check
    at a random vector missed a Hessian 30% wrong on the other variables, and the derivative
    came back 23% wrong. The check at the low-curvature direction (or at a solve's residual)
    sees it, with every solver."""
    rng = onp.random.default_rng(1)
    n = 6
    M = rng.standard_normal((n, n))
    s = onp.ones(n)
    s[0] = 1e4
    A = s[:, None] * (M @ M.T / n + onp.eye(n)) * s
    wrong = A.copy()
    wrong[1:, 1:] *= 1.3
    B = rng.standard_normal((n, 3))

    def f(x, y):
        return 0.5 * anp.dot(y, anp.dot(A, y)) - anp.dot(y, anp.dot(B, x))

    given = (
        {"hess": lambda x, y: wrong} if argument == "hess" else {"hessp": lambda x, y, v: wrong @ v}
    )
    x = onp.array([0.3, -0.7, 1.1])
    with pytest.raises(al.HessianMismatchError, match=argument):
        jacobian(lambda x_: al.argmin(f, x_, onp.zeros(n), solver=solver, **given))(x)
    # and the right Hessian gives the right derivative with each of them
    right = {"hess": lambda x, y: A} if argument == "hess" else {"hessp": lambda x, y, v: A @ v}
    J = jacobian(lambda x_: al.argmin(f, x_, onp.zeros(n), solver=solver, **right))(x)
    assert al.max_error(J, onp.linalg.solve(A, B), relative=True) < 1e-6


@pytest.mark.parametrize("solver", ["dense", "cg", "sparse"])
def test_a_hessp_in_scipys_argument_order_is_named(solver):
    """Issue 20: scipy's ``hessp(y, v, *args)`` passed as argminlib's ``hessp(x, y, v)`` got
    'Fix hessp' with no hint; the message now says which order it works in."""
    n = 5
    rng = onp.random.default_rng(0)
    M = rng.standard_normal((n, n))
    A = M @ M.T + n * onp.eye(n)

    def f(x, y):
        return 0.5 * anp.dot(y, anp.dot(A, y)) + anp.sum(x * y**4) / 4

    def scipy_order(y, v, x):
        return A @ v + 3 * x * y**2 * v

    extra = {"hess_sparsity": onp.ones((n, n))} if solver == "sparse" else {}
    with pytest.raises(al.HessianMismatchError, match=r"scipy\.optimize's order"):
        al.argmin(f, onp.ones(n), onp.ones(n), hessp=scipy_order, solver=solver, **extra)
    # a hessp that is wrong in every order gets no such hint
    with pytest.raises(al.HessianMismatchError) as err:
        al.argmin(f, onp.ones(n), onp.ones(n), hessp=lambda x, y, v: 2 * A @ v, solver=solver)
    assert "order" not in str(err.value)
