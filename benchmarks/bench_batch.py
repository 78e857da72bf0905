"""Print the cost of many argmins at once (issue 18) as a ratio to the analytic floor.

    python benchmarks/bench_batch.py            # ridge B = 1000, n = 10; chain B = 100, n = 1e4
    python benchmarks/bench_batch.py --quick    # ridge only

Ridge: ``B`` problems of ``benchmarks/problems.py``'s :class:`Ridge` (one weight ``exp(x_i)``
per coefficient, problem ``b`` built with seed ``b``), solved by
``argminlib.batch.argmin_batch``. Each method times ``autograd.grad`` of the loss over the
whole batch, ``sum_b 1/2 |y_b - y_val,b|^2``: the forward solve, then the block-diagonal
linearisation, coupling check, certificate, polish test and the adjoint solve. The *floor*
is the same computed by hand with numpy's stacked linear algebra: the ``B`` Hessians formed
by ``matmul``, one stacked ``solve`` for the forward, one for the adjoint, and the products
``-lam * exp(x) * y`` of the hypergradient; it is measured in the same run, again between
methods (best of all; each timing takes as many runs as fit in a second).
``forward=closed`` passes the same stacked solve as ``forward=`` (the convention of
``bench_performance.py``); ``forward=newton`` is the default batched
Newton from ``y0 = 0``. The loop column times ``grad`` through single ``argminlib.argmin``
calls (the same forward, solver and loss, problem by problem) over ``LOOP`` problems,
scaled to ``B``. *autograd's least* (dense): the closed forward, one trace of ``F_Y`` in
``(x, y)``, the ``n`` Hessian products, one backward pass for the hypergradient and one
stacked Cholesky, timed alone: what any dense method built on autograd's products pays.

Chain (optional): ``B = 100`` of :class:`Chain` with ``n = 10^4`` (tridiagonal Hessians),
by block-diagonal CG and a batched Lanczos certificate; floor: the problems' own LAPACK
tridiagonal floors, in a loop.

Targets (read from the table, not asserted): batch at most 5x the floor, at least 20x
faster than the loop. ``OPENBLAS_NUM_THREADS`` is set to 1 unless set (as in
``bench_performance.py``): on a shared 2-core machine BLAS threads slow small operations.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import autograd.numpy as anp  # noqa: E402
import numpy as onp  # noqa: E402
from autograd import grad, make_vjp  # noqa: E402
from autograd.builtins import tuple as atuple  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from problems import Chain, Ridge, best_time, upper  # noqa: E402

import argminlib as al  # noqa: E402
from argminlib.batch import argmin_batch  # noqa: E402
from argminlib.benchmark import relative_error  # noqa: E402

#: problems of the loop actually timed (scaled to B)
LOOP = 50


class RidgeBatch:
    """``B`` :class:`Ridge` problems of size ``n`` stacked (problem ``b``: seed ``b``)."""

    def __init__(self, B, n):
        self.problems = [Ridge(n, seed=b) for b in range(B)]
        self.B, self.n = B, n
        self.X = onp.stack([p.X for p in self.problems])
        self.Xt = onp.ascontiguousarray(onp.swapaxes(self.X, 1, 2))
        self.t = onp.stack([p.t for p in self.problems])
        self.Xt_t = onp.stack([p.Xt_t for p in self.problems])
        self.x = onp.stack([p.x for p in self.problems])
        self.y_val = onp.stack([p.y_val for p in self.problems])
        self.y0 = onp.zeros((B, n))

    def f(self, x, y):
        B, n = self.B, self.n
        r = anp.reshape(anp.matmul(self.X, anp.reshape(y, (B, n, 1))), (B, 2 * n)) - self.t
        return 0.5 * anp.sum(r * r, 1) + 0.5 * anp.sum(anp.exp(x) * y**2, 1)

    def hessians(self, x):
        H = onp.matmul(self.Xt, self.X)
        i = onp.arange(self.n)
        H[:, i, i] += onp.exp(x)
        return H

    def forward(self, f, x, y0):
        return onp.linalg.solve(self.hessians(x), self.Xt_t[:, :, None])[:, :, 0]

    def floor(self, x):
        H = self.hessians(x)
        y = onp.linalg.solve(H, self.Xt_t[:, :, None])[:, :, 0]
        lam = onp.linalg.solve(H, (y - self.y_val)[:, :, None])[:, :, 0]
        return -lam * onp.exp(x) * y

    def reference(self, x):
        return onp.stack([p.hypergradient(x[b]) for b, p in enumerate(self.problems)])

    def loss(self, y):
        return 0.5 * anp.sum((y - self.y_val) ** 2)


class ChainBatch:
    """``B`` :class:`Chain` problems of size ``n`` stacked (problem ``b``: seed ``b``)."""

    def __init__(self, B, n):
        self.problems = [Chain(n, seed=b) for b in range(B)]
        self.B, self.n = B, n
        self.s = onp.stack([p.s for p in self.problems])
        self.x = onp.stack([p.x for p in self.problems])
        self.y_val = onp.stack([p.y_val for p in self.problems])
        self.y0 = onp.zeros((B, n))

    def f(self, x, y):
        d = anp.diff(y, axis=1)
        return 0.5 * anp.sum((y - self.s) ** 2, 1) + 0.5 * anp.sum(anp.exp(x) * d * d, 1)

    def forward(self, f, x, y0):
        return onp.stack([p.forward(None, x[b], None) for b, p in enumerate(self.problems)])

    def floor(self, x):
        return onp.stack([p.floor(x[b]) for b, p in enumerate(self.problems)])

    def reference(self, x):
        return onp.stack([p.hypergradient(x[b]) for b, p in enumerate(self.problems)])

    def loss(self, y):
        return 0.5 * anp.sum((y - self.y_val) ** 2)


def batch_gradient(p, solver, closed):
    forward = p.forward if closed else None
    return grad(lambda x: p.loss(argmin_batch(p.f, x, p.y0, solver=solver, forward=forward)))


def loop_gradient(p, solver, closed, count):
    """``grad`` through single ``argmin`` calls, problem by problem, for ``count``."""
    funs = []
    for q in p.problems[:count]:
        forward = q.forward if closed else None
        L = upper(q)
        funs.append(grad(lambda x, q=q, L=L, fw=forward: L(al.argmin(q.f, x, q.y0, **opts(fw)))))

    def opts(forward):
        return dict(solver=solver, forward=forward)

    def run():
        return [g(p.x[b]) for b, g in enumerate(funs)]

    return run


def autograd_least(p):
    """The dense method's unavoidable autograd work and factorisation, timed alone."""
    y = p.forward(None, p.x, None)

    def G(x, y):
        vjp, _ = make_vjp(lambda y_: p.f(x, y_))(y)
        return vjp(onp.ones(p.B))

    def trace():
        return make_vjp(lambda xy: G(xy[0], xy[1]))(atuple((p.x, y)))

    t_fwd = best_time(lambda: p.forward(None, p.x, None), 3, BUDGET)[0]
    t_trace, (back, _) = best_time(trace, 3, BUDGET)
    V = onp.random.default_rng(0).standard_normal(y.shape)
    t_back = best_time(lambda: back(V), 3, BUDGET)[0]
    H = p.hessians(p.x)
    t_chol = best_time(lambda: onp.linalg.cholesky(H), 3, BUDGET)[0]
    return t_fwd + t_trace + (p.n + 1) * t_back + t_chol


#: seconds that each best-of timing (the floor's and each method's) may spend
BUDGET = 1.0


def measure(p, methods, loop_count, repeat):
    """``{name: (seconds, error, loop seconds scaled to B)}`` and the floor's seconds."""
    ref = p.reference(p.x)
    floor = best_time(lambda: p.floor(p.x), repeat, BUDGET)[0]
    rows = {}
    for name, solver, closed in methods:
        g = batch_gradient(p, solver, closed)
        t, out = best_time(lambda g=g: g(p.x), repeat, BUDGET)
        loop = loop_gradient(p, solver, closed, loop_count)
        t_loop = best_time(loop, 1, budget=0)[0] * p.B / loop_count
        rows[name] = (t, relative_error(out, ref), t_loop)
        floor = min(floor, best_time(lambda: p.floor(p.x), repeat, BUDGET)[0])
        print(f"  measured {name}", file=sys.stderr)
    return rows, floor


def table(title, rows, floor, least=None):
    head = (
        f"{'method':<24} | {'ms':>8} | {'/ floor':>8} | {'loop ms (scaled)':>16} | "
        f"{'loop / batch':>12} | {'rel. error':>10}"
    )
    lines = [title, f"floor (numpy by hand): {1e3 * floor:.3f} ms", head, "-" * len(head)]
    for name, (t, err, t_loop) in rows.items():
        lines.append(
            f"{name:<24} | {1e3 * t:8.2f} | {t / floor:7.1f}x | {1e3 * t_loop:16.1f} | "
            f"{t_loop / t:11.0f}x | {err:10.1e}"
        )
    if least is not None:
        lines.append(f"autograd's least (dense): {1e3 * least:.2f} ms = {least / floor:.1f}x floor")
    return "\n".join(lines)


def targets(rows, floor, least=None):
    lines = ["targets:"]
    for name, (t, _, t_loop) in rows.items():
        ratio, gain = t / floor, t_loop / t
        note = ""
        if ratio > 5 and least is not None and name.startswith("dense"):
            note = f" (autograd's least alone is {least / floor:.1f}x)"
        lines.append(
            f"  {name}: {ratio:.1f}x floor <= 5x: {'met' if ratio <= 5 else 'MISSED'}{note}; "
            f"{gain:.0f}x faster than the loop >= 20x: {'met' if gain >= 20 else 'MISSED'}"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="ridge only")
    ap.add_argument("--repeat", type=int, default=5, help="best of at least this many runs")
    args = ap.parse_args(argv)
    print(
        f"argminlib batch benchmark, {platform.machine()}, Python {platform.python_version()}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
    p = RidgeBatch(1000, 10)
    methods = [
        ("dense, forward=closed", "dense", True),
        ("cg, forward=closed", "cg", True),
        ("dense, forward=newton", "dense", False),
        ("cg, forward=newton", "cg", False),
    ]
    rows, floor = measure(p, methods, LOOP, args.repeat)
    least = autograd_least(p)
    print()
    print(
        table(
            f"ridge, B = {p.B} problems of n = {p.n}: grad of the loss over the batch "
            f"(loop: {LOOP} single argmin calls, scaled to B)",
            rows,
            floor,
            least,
        )
    )
    print(targets(rows, floor, least))
    if not args.quick:
        c = ChainBatch(100, 10**4)
        rows_c, floor_c = measure(c, [("cg, forward=closed", "cg", True)], 5, 2)
        print()
        print(
            table(
                f"chain, B = {c.B} problems of n = {c.n}: block-diagonal CG, batched Lanczos "
                "(loop: 5 single argmin calls, scaled to B)",
                rows_c,
                floor_c,
            )
        )
        print(targets(rows_c, floor_c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
