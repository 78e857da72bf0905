"""Print argminlib's cost as a ratio to the analytic floor, measured in the same run.

    python benchmarks/bench_performance.py           # ridge n = 10..2000, chain 1e3..1e6
    python benchmarks/bench_performance.py --quick   # small sizes, a few seconds

For each problem of ``benchmarks/problems.py`` and size, the *floor* is the hand-written
forward solve plus one adjoint solve (numpy/scipy). Every method times ``autograd.grad`` of
``L(argmin(f, x, y0, forward=problem.forward, ...))``: the same forward solve, then
argminlib's linearisation, certificate and solves. Each time is printed as ``time / floor``
(best of at least ``--repeat`` runs each, and of as many more as fit in 0.1 s:
``problems.best_time``), with the method's max relative error against the analytic
hypergradient. Then the Krylov iterations with and without preconditioning, and the full
Jacobian at n = 1000 (one factorisation and back-substitutions) against ``n`` separate
hypergradients. The column ``grad f`` is one ``autograd.grad`` of ``f`` at the solution, also
as a ratio to the floor: the least any autograd-based method adds (each traces ``f_Y``
there at least once). A second table gives, per method, *autograd's least*
(``problems.autograd_least``): the autograd work and factorisation the method cannot do
without, timed alone, a lower bound on any implementation on autograd's products; each
missed target says whether it lies below that bound. Targets (issue 8), read from the
table, never asserted by a test: ridge
<= 1.5x the floor at n >= 400; chain at 1e6: plain CG <= 10x, ``hess_sparsity`` <= 3x, a
user ``hess``/``hessp`` <= 1.5x; n = 10 and 100 <= 10x; the full Jacobian at n = 1000 at
least 10x cheaper than n separate hypergradients.

BLAS threads: on a shared 2-core machine OpenBLAS's threads make every vector operation
several times slower when the cores are busy, so unless ``OPENBLAS_NUM_THREADS`` is set this
script sets it to 1 (for the floor too) before numpy loads.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as onp  # noqa: E402
from autograd import grad, jacobian  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from problems import Chain, Ridge, autograd_least, best_time, upper  # noqa: E402

import argminlib as al  # noqa: E402
from argminlib.benchmark import relative_error  # noqa: E402

RIDGE_SIZES = (10, 100, 400, 1000, 2000)
CHAIN_SIZES = (1000, 10**4, 10**5, 10**6)
QUICK = {"ridge": (10, 100, 400), "chain": (1000, 10**4)}


def methods(p):
    """``name -> argmin options`` for problem ``p`` (``None``: does not apply)."""
    sparse = isinstance(p, Chain)
    return {
        "dense": dict(solver="dense") if p.n <= 1000 else None,
        "cg": dict(solver="cg"),
        "minres": dict(solver="minres"),
        "pcg": dict(solver=al.CG(preconditioner="jacobi")),
        "sparsity": dict(hess_sparsity=p.hess_sparsity, solver="sparse") if sparse else None,
        "sparsity-cg": dict(hess_sparsity=p.hess_sparsity, solver="cg") if sparse else None,
        "hess": dict(hess=p.hess, solver="sparse" if sparse else "dense"),
        "hessp": dict(hessp=p.hessp, solver="cg"),
    }


NAMES = ("dense", "cg", "minres", "pcg", "sparsity", "sparsity-cg", "hess", "hessp")


def hypergradient(p, options):
    L = upper(p)
    return grad(lambda x: L(al.argmin(p.f, x, p.y0, forward=p.forward, **options)))


def measure(p, repeat, skip=()):
    """``{method: (ratio, error, seconds)}`` plus ``"floor": seconds`` for problem ``p``."""
    ref = p.hypergradient(p.x)
    floor, _ = best_time(lambda: p.floor(p.x), max(repeat, 5))
    times = {}
    for name, options in methods(p).items():
        if options is None or name in skip:
            continue
        g_fun = hypergradient(p, options)
        t, g = best_time(lambda g_fun=g_fun: g_fun(p.x), repeat)
        times[name] = (t, relative_error(g, ref))
        # the floor again between methods: its best over the whole run (the machine's load
        # varies; best-of against best-of)
        floor = min(floor, best_time(lambda: p.floor(p.x), max(repeat, 3))[0])
    # the least autograd itself costs: one gradient of f at the solution (every method
    # traces f_Y there at least once, to check stationarity and for f_XY)
    y = p.solution(p.x)
    g_f = grad(p.f, 1)
    out = {"floor": floor, "grad f": best_time(lambda: g_f(p.x, y), max(repeat, 5))[0] / floor}
    for name, (t, err) in times.items():
        out[name] = (t / floor, err, t)
    opts = {m: o for m, o in methods(p).items() if o is not None and m not in skip}
    out["least"] = {m: t / floor for m, t in autograd_least(p, opts, max(repeat, 3)).items()}
    return out


def iterations(p):
    """Krylov iterations of one hypergradient's solves (Newton check + adjoint)."""
    y = p.solution(p.x)
    u = y - p.y_val
    rows = {}
    for name, options in (
        ("cg", dict(solver="cg")),
        ("cg, Jacobi estimated (8 products)", dict(solver=al.CG(preconditioner="jacobi"))),
        (
            "cg, Jacobi exact (hess_sparsity)",
            dict(hess_sparsity=getattr(p, "hess_sparsity", None), solver="cg"),
        ),
        (
            "cg, ILU (hess_sparsity)",
            dict(
                hess_sparsity=getattr(p, "hess_sparsity", None), solver=al.CG(preconditioner="ilu")
            ),
        ),
    ):
        if "hess_sparsity" in options and options["hess_sparsity"] is None:
            continue
        prob = al.Unconstrained(p.f, p.y0, forward=p.forward, **options)
        _, info = prob.vjp(p.x, y, u, return_info=True)
        rows[name] = (info.iterations, info.solves)
    return rows


def jacobian_cost(repeat, n=1000):
    """Full Jacobian at ``n`` against ``n`` separate hypergradients (chain, sparse):
    ``(seconds of one hypergradient, seconds of the Jacobian by Problem.jacobian (one
    factorisation, one multi-column back-substitution), its max relative error, seconds of
    autograd.jacobian through argmin (n VJPs on one factorisation, each solve checked))``."""
    p = Chain(n)
    opts = dict(hess_sparsity=p.hess_sparsity, solver="sparse")
    one, _ = best_time(lambda: hypergradient(p, opts)(p.x), repeat)
    J_fun = jacobian(lambda x: al.argmin(p.f, x, p.y0, forward=p.forward, **opts))
    t_auto, J_auto = best_time(lambda: J_fun(p.x), repeat)
    prob = al.Unconstrained(p.f, p.y0, forward=p.forward, **opts)
    t_jac, J = best_time(lambda: prob.jacobian(p.x, p.solution(p.x)), repeat)
    H = p.hess(p.x, None).toarray()
    y = p.solution(p.x)
    B = onp.zeros((p.n, p.n - 1))  # d f_Y / dx: column i is exp(x_i) (Dy)_i (e_i - e_{i+1})
    dy = onp.diff(y) * onp.exp(p.x)
    B[onp.arange(p.n - 1), onp.arange(p.n - 1)] = -dy
    B[onp.arange(1, p.n), onp.arange(p.n - 1)] = dy
    J_ref = -onp.linalg.solve(H, B)
    return one, t_jac, max(relative_error(J, J_ref), relative_error(J_auto, J_ref)), t_auto


def format_rows(problem, rows):
    head = f"{'n':>8} | {'floor ms':>9} | {'grad f':>7} | " + " | ".join(f"{m:>16}" for m in NAMES)
    lines = [
        f"{problem}: time / floor (max rel. error vs the analytic hypergradient)",
        head,
        "-" * len(head),
    ]
    for n, r in rows:
        cells = []
        for m in NAMES:
            cells.append(f"{r[m][0]:6.1f}x ({r[m][1]:7.1e})" if m in r else f"{'-':>16}")
        lines.append(
            f"{n:>8} | {1e3 * r['floor']:9.3f} | {r['grad f']:6.1f}x | " + " | ".join(cells)
        )
    lines += [
        "",
        f"{problem}: autograd's least for each method / floor (lower bounds: autograd_least)",
    ]
    lines += [head.replace(" grad f ", "        "), "-" * len(head)]
    for n, r in rows:
        cells = [
            f"{r['least'][m]:6.1f}x{'':>9}" if m in r["least"] and m in r else f"{'-':>16}"
            for m in NAMES
        ]
        lines.append(f"{n:>8} | {1e3 * r['floor']:9.3f} | {'':>7} | " + " | ".join(cells))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument(
        "--repeat", type=int, default=3, help="best of at least this many runs (more within 0.1 s)"
    )
    args = ap.parse_args(argv)
    ridge = QUICK["ridge"] if args.quick else RIDGE_SIZES
    chain = QUICK["chain"] if args.quick else CHAIN_SIZES
    print(
        f"argminlib performance, {platform.machine()}, Python {platform.python_version()}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
    results = {}
    for name, P, sizes in (("ridge", Ridge, ridge), ("chain", Chain, chain)):
        rows = []
        for n in sizes:
            rep = args.repeat if n < 10**6 else 2
            skip = ("minres", "pcg") if n >= 10**6 else ()
            rows.append((n, measure(P(n), rep, skip)))
            print(f"  measured {name} n={n}", file=sys.stderr)
        results[name] = rows
        print()
        print(format_rows(name, rows))
    print()
    print("Krylov iterations of the adjoint solve of one hypergradient:")
    for name, P, n in (("ridge", Ridge, 400), ("chain", Chain, chain[-1] if args.quick else 10**5)):
        for method, (its, solves) in iterations(P(n)).items():
            print(f"  {name} n={n:>7}  {method:<36} {its:>5} iterations in {solves} solves")
    one, t_jac, err, t_auto = jacobian_cost(args.repeat)
    print()
    print(
        f"full Jacobian, chain n=1000 (hess_sparsity, sparse): Problem.jacobian {1e3 * t_jac:.1f} "
        f"ms, autograd.jacobian through argmin {1e3 * t_auto:.1f} ms (rel. error {err:.1e}); one "
        f"hypergradient {1e3 * one:.2f} ms, so 1000 separate ones {one * 1000:.2f} s: the "
        f"Jacobian is {one * 1000 / t_jac:.0f}x cheaper ({one * 1000 / t_auto:.0f}x by autograd)"
    )
    print()
    print(targets(results, one * 1000 / t_jac))
    return 0


def targets(results, jac_gain):
    """The issue's targets, met or missed, read from the measured rows."""
    lines = ["targets:"]

    def row(problem, n):
        return dict(results.get(problem, [])).get(n)

    def check(label, value, limit, floor=None, of="for it"):
        if value is None:
            return
        ok = value <= limit
        note = ""
        if not ok and floor is not None:
            note = f" (autograd's least {of}: {floor:.2f}x, " + (
                "so out of reach with autograd's products)" if floor > limit else "reachable)"
            )
        lines.append(f"  {label}: {value:.2f}x <= {limit}x: {'met' if ok else 'MISSED'}{note}")

    for n in (400, 1000, 2000):
        r = row("ridge", n)
        if r:
            best = min((r[m][0], m) for m in NAMES if m in r)
            least = min(r["least"].values())
            check(f"ridge n={n} best ({best[1]})", best[0], 1.5, least, "of any method")
    r = row("chain", 10**6)
    if r:
        least = r["least"]
        check("chain 1e6 cg", r["cg"][0], 10, least["cg"])
        check("chain 1e6 hess_sparsity", r["sparsity"][0], 3, least["sparsity"])
        check("chain 1e6 user hess", r["hess"][0], 1.5, least["hess"])
        check("chain 1e6 user hessp", r["hessp"][0], 1.5, least["hessp"])
    for n in (10, 100):
        r = row("ridge", n)
        if r:
            best = min((r[m][0], m) for m in NAMES if m in r)
            check(
                f"ridge n={n} best ({best[1]}; one grad f alone: {r['grad f']:.1f}x)",
                best[0],
                10,
                min(r["least"].values()),
                "of any method",
            )
    ok = jac_gain >= 10
    lines.append(
        f"  full Jacobian n=1000 {jac_gain:.0f}x cheaper >= 10x: {'met' if ok else 'MISSED'}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
