"""Every chapter of the book, executed with papermill in fast mode, as a regression test.

The chapters record their checks with ``myst_nb.glue``; these tests assert on those values,
so a change in argminlib that breaks a figure's data fails here with the chapter named.
The chapters run two at a time (papermill kernels are separate processes), each twice, to
check that the recorded values are deterministic (timings and measured memory, glued as
``time_*`` and ``mem_*``, excepted).
"""

import pytest
from chapters import ChapterError, book_code_cells, jupytext_code_cells, run_chapters, toc_chapters

pytestmark = pytest.mark.chapter

# Fast-mode parameters injected into each chapter's `parameters` cell.
FAST = {
    "book/ch01_introduction": {"n": 4},
    "book/ch02_unconstrained": {"grid": 41, "n_branch": 15, "n_sizes": 5},
    "book/ch03_equality": {"n_sizes": 5},
    "book/ch04_inequality": {"n_grid": 21, "ts": [1.0, 10.0], "n_path": 25, "n_sizes": 5},
    "book/ch05_bilevel": {"iterations": 60, "known_iterations": 300},
    "book/ch06_scale": {
        "n_demo": 200,
        "n_unroll": 100,
        "unroll_steps": [5, 20, 50, 200, 400],
        "n_fixed": 400,
        "ms": [1, 4, 16, 64, 200],
        "m_fixed": 8,
        "ns": [100, 300, 1000],
        "dense_max": 1000,
        "repeat": 3,
        "batch_sizes": [1, 10, 100],
        "batch_loop": 10,
    },
}


# Below this, a glued number is a rounding-level error (see test_chapter_is_deterministic).
ROUNDING = 1e-12


@pytest.fixture(scope="session")
def results():
    jobs = {ch: (ch, FAST[ch]) for ch in toc_chapters()}
    jobs.update({f"{ch}#again": (ch, FAST[ch]) for ch in toc_chapters()})
    return run_chapters(jobs, workers=2)


def values(results, chapter):
    out = results[chapter]
    if isinstance(out, ChapterError):
        pytest.fail(str(out))
    return out


def test_every_chapter_has_fast_parameters():
    assert set(toc_chapters()) == set(FAST), "add the new chapter's fast mode to FAST"


@pytest.mark.parametrize("chapter", toc_chapters())
def test_book_and_papermill_read_the_same_cells(chapter):
    """MyST math can swallow code cells in the book's reader but not in jupytext's."""
    assert book_code_cells(chapter) == jupytext_code_cells(chapter)


@pytest.mark.parametrize("chapter", toc_chapters())
def test_chapter_is_deterministic(results, chapter):
    """Two runs of a chapter tell the same story: same keys, same figures, same numbers.

    Numbers agree to ``rel=1e-6`` above ``ROUNDING`` in absolute value. Below it a glued
    value is a round-off-level error (of a solve, a feasibility, a check against a closed
    form) whose last bits are not part of the book's claim: the curvature certificate starts
    its Lanczos run from a session-random vector (``argminlib.randomness``), so the order of
    floating-point operations, and with it a 1e-16 error, differs between kernels. The
    chapter's own test bounds each such error; here it only has to stay below ``ROUNDING``.
    """
    first, second = values(results, chapter), values(results, f"{chapter}#again")
    assert first, f"{chapter} glued no values"

    def stable(v):
        return {k: x for k, x in v.items() if not k.startswith(("time_", "mem_"))}

    first, second = stable(first), stable(second)
    assert first.keys() == second.keys()
    for key, a in first.items():
        b = second[key]
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            assert b == pytest.approx(a, rel=1e-6, abs=ROUNDING), key
        else:
            assert b == a, key


def test_ch01_introduction(results):
    v = values(results, "book/ch01_introduction")
    assert v["ch1_n"] == 4
    assert v["ch1_fd_error"] < 1e-6
    # the hypergradient by hand (autograd HVPs, scipy CG) is the library's
    assert v["ch1_hand_error"] < 1e-10


def test_ch02_unconstrained(results):
    v = values(results, "book/ch02_unconstrained")
    # the digest's check values at x = 1 on the three branches
    assert v["f1_yn"] == pytest.approx(-3.31174, abs=1e-5)
    assert v["f1_yz"] == pytest.approx(0.0, abs=1e-12)
    assert v["f1_yp"] == pytest.approx(1.81174, abs=1e-5)
    assert v["f1_fn"] == pytest.approx(-83.9666, abs=1e-4)
    assert v["f1_fp"] == pytest.approx(-16.7209, abs=1e-4)
    assert v["f1_dn"] == pytest.approx(0.201503, abs=1e-6)
    assert v["f1_dz"] == pytest.approx(0.0, abs=1e-12)
    assert v["f1_dp"] == pytest.approx(-1.701503, abs=1e-6)
    assert v["fig1_closed_error"] < 1e-10
    assert v["fig1_fd_error"] < 1e-7
    for key in ("mean_error", "lemma32_error", "lemma33_error", "lemma34_error", "sm_theta_error"):
        assert v[key] < 1e-8, key
    assert v["lemma34_core"] < 1e-10 and v["sm_hand_error"] < 1e-12
    assert v["fig2_loss_after"] < v["fig2_loss_before"]
    assert v["fig2_prediction_error"] < 0.25 * v["fig2_movement"]
    assert v["fig2_movement"] > 0.2  # visible in a 4 x 4 window
    # the first-order prediction is exact to second order: error ~ step^2, motion ~ step
    assert v["fig2_slope"] == pytest.approx(2.0, abs=0.15)
    assert v["fig2_motion_slope"] == pytest.approx(1.0, abs=0.1)
    assert v["fig2_min_length"] == pytest.approx(1e-3) and v["fig2_target"] == "(1, 1)"
    # the exercises' checks
    assert v["ex21_error"] < 1e-8 and v["ex23_error"] < 1e-12


def test_ch03_equality(results):
    v = values(results, "book/ch03_equality")
    for key in ("l41_error", "dep_error", "nl_error", "nl_lemma_error", "fig4_theta_error"):
        assert v[key] < 1e-8, key
    assert v["nl_residual"] < 1e-12  # the least-squares multipliers satisfy stationarity
    assert v["ns_error"] < 1e-12 and v["kkt_solver_error"] < 1e-8 and v["l41_feas"] < 1e-12
    assert v["drop_error"] > 1e-2  # ignoring the x-dependence of A, b is visibly wrong
    assert v["fig4_loss_after"] < v["fig4_loss_before"]
    assert v["fig4_prediction_error"] < 0.25 * v["fig4_movement"]
    # the constraint holds for x*_1 before and after the step, and the motion is visible
    assert v["fig4_constraint_before"] < 1e-8 and v["fig4_constraint_after"] < 1e-8
    assert v["fig4_movement"] > 0.2
    # the prediction error is second order in the step, the motion first order
    assert v["fig4_slope"] == pytest.approx(2.0, abs=0.15)
    assert v["fig4_motion_slope"] == pytest.approx(1.0, abs=0.1)
    assert v["fig4_min_length"] == pytest.approx(1e-3)
    assert v["ex31_error"] < 1e-12 and v["ex32_error"] < 1e-8


def test_ch04_inequality(results):
    v = values(results, "book/ch04_inequality")
    # the digest's barrier check values
    assert v["chk_g_1"] == pytest.approx(1.36603, abs=1e-5)
    assert v["chk_d_1"] == pytest.approx(0.788675, abs=1e-6)
    assert v["chk_g_10"] == pytest.approx(0.0477, abs=1e-4)
    assert v["chk_d_10"] == pytest.approx(0.0436, abs=1e-4)
    assert v["fig3_closed_error"] < 1e-9
    assert v["l42_fd_error"] < 1e-6
    assert v["conv_last"] < 1e-3 < v["conv_first"]
    assert v["conv_slope"] == pytest.approx(-1.0, abs=0.05)  # the barrier's 1/t rate
    assert v["exact_max_error"] < 1e-10 and v["several_exact_error"] < 1e-7
    assert v["exact_solution_error"] < 1e-8  # the solver's answer, checked against max(x, 0)
    assert v["several_barrier_last"] < 1e-2
    assert v["ball_fd_error"] < 1e-7 and v["ball_vs_exact"] < 0.1
    assert v["fig5_loss_after"] < v["fig5_loss_before"]
    assert v["fig5_prediction_error"] < 0.3 * v["fig5_movement"]
    # the disc binds for x*_1: exactly (active set) and for the barrier (just inside)
    assert v["fig5_active_before"] == 1 and v["fig5_active_after"] == 1
    assert 0.98 < v["fig5_norm_before"] < 1 and 0.98 < v["fig5_norm_after"] < 1
    assert v["fig5_movement"] > 0.2
    # the first-order prediction of x*_1 leaves the disc: a tangent step, of second order
    assert v["fig5_pred_norm"] > 1.0 and v["fig5_pred_cos"] < 0.05
    assert v["fig5_pythagoras"] == pytest.approx(v["fig5_pred_norm"], abs=0.01)
    assert v["fig5_slope"] == pytest.approx(2.0, abs=0.15)
    assert v["fig5_motion_slope"] == pytest.approx(1.0, abs=0.1)
    assert v["fig5_min_length"] == pytest.approx(1e-3)
    assert v["ex42_error"] < 1e-8 and v["ex43_error"] < 1e-10 and v["ex43_active"] == 2
    # the lasso: refused through argmin (a kink), right through the proximal fixed point
    assert v["lasso_refused"] == 1 and 0 < v["lasso_support"] < 10
    assert v["lasso_closed_error"] < 1e-10 and v["lasso_fd_error"] < 1e-6


def test_ch05_bilevel(results):
    v = values(results, "book/ch05_bilevel")
    assert v["bilevel_batch_vs_loop"] < 1e-10  # the batched features are the loop's
    assert v["bilevel_grad_error"] < 1e-7
    # the targets are reachable by construction: every variant falls to its floor, zero
    for variant in ("unconstrained", "sum", "ball-barrier"):
        assert v[f"bl_{variant}_first"] > 1.0, variant
        assert v[f"bl_{variant}_last"] < 1e-8, variant
        assert v[f"bl_{variant}_distance"] < 1e-4, variant
    assert v["known_lbfgs_error"] < 1e-5 and v["known_backtracking_error"] < 1e-3
    # exercise 5.2: targets in one open half-plane stay out of reach, above the bound
    assert v["ex52_loss"] >= v["ex52_bound"] > 0.5
    assert v["ex52_margin"] < 1e-6


def test_ch06_scale(results):
    v = values(results, "book/ch06_scale")
    assert v["hvp_error"] < 1e-12 and v["mode_error"] < 1e-9
    assert v["batch_error"] < 1e-8  # batch=True against a loop of single calls
    assert v["jacobian_solves"] == 40
    assert v["krylov_cg_error"] < 1e-8 and v["krylov_gmres_error"] < 1e-8
    assert v["krylov_minres_error"] < 1e-6
    # unrolling: the error of the unrolled hypergradient falls with K, down to rounding
    errors = v["un_errors"]
    assert v["un_steps"] == [5, 20, 50, 200, 400]
    assert all(b < a for a, b in zip(errors[:-1], errors[1:], strict=True)), errors
    assert errors[0] > 0.1 and errors[-1] < 1e-12
    assert v["un_K_good"] == 200
    assert v["un_implicit_error"] < 1e-9 and v["un_fd_error"] < 1e-5
    assert v["mem_un_slope"] == pytest.approx(1.0, abs=0.1)  # memory grows like K
    assert v["mem_un_last_ratio"] > 5  # far above the implicit gradient's
    # parameters and unknowns: the measured slopes are timings, reported in the text but
    # never asserted (tests assert numbers, not timings); the accuracy of every method is
    for meth in ("fd", "cg", "minres", "gmres"):
        assert v[f"sw_error_{meth}"] < 1e-8, meth
    assert v["sw_error_dense"] < 1e-12 and v["sw_max_solution_error"] < 1e-12
    # the performance table: every method accurate, ratios positive (never asserted on size)
    assert v["perf_max_error"] < 1e-8
    for key in ("time_ridge_400_dense", "time_chain_100000_sparsity", "time_cert_ridge_400_dense"):
        assert v[key] > 0, key
    assert {"time_cert_chain_100000_cg", "time_cert_chain_100000_minres"} <= set(v)
