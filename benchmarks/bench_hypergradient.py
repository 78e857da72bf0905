"""Print the hypergradient benchmark table (see argminlib/benchmark.py for the problem).

    python benchmarks/bench_hypergradient.py                 # n = 10, 100, 1000, 10000
    python benchmarks/bench_hypergradient.py --sizes 10 100 --fd-max 100

Targets (checked by reading the table, never by a timed test): the matrix-free VJP costs no
more than the forward solve at n = 1000, and forward solve plus hypergradient at n = 10000
take under one second on a 2-core machine.
"""

import argparse
import platform
import sys

from argminlib.benchmark import format_table, run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    ap.add_argument("--fd-max", type=int, default=1000, help="largest n for finite differences")
    ap.add_argument("--dense-max", type=int, default=1000, help="largest n for the dense solve")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = ap.parse_args(argv)
    rows = run(args.sizes, fd_max=args.fd_max, dense_max=args.dense_max, repeat=args.repeat)
    print(
        f"hypergradient benchmark, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print("time: best of runs in seconds; rel.err: max relative error against the analytic")
    print("adjoint (for 'forward': of the solution y*)")
    print(format_table(rows))
    by = {(r.n, r.method): r for r in rows}
    if (1000, "cg") in by:
        ok = by[1000, "cg"].seconds <= by[1000, "forward"].seconds
        print(f"target n=1000: matrix-free VJP <= forward solve: {'met' if ok else 'MISSED'}")
    if (10000, "cg") in by:
        total = by[10000, "forward"].seconds + by[10000, "cg"].seconds
        print(
            f"target n=10000: forward + hypergradient {total:.3f} s < 1 s: "
            f"{'met' if total < 1 else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
