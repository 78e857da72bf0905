"""Figures shared by several chapters of the book (matplotlib is imported on first use).

Only drawing lives here; every number drawn is computed by the caller with argminlib.
"""

from __future__ import annotations

import io

import numpy as onp

from .softmax import log_likelihood, unflatten_parameters

__all__ = ["BOOK_STYLE", "likelihood_surfaces", "loglog_slope", "use_book_style"]

#: matplotlib settings of the book's figures (``plt.rcParams.update(BOOK_STYLE)``). The
#: figures are at most 6.8 inches wide, within the book's text column at 100 dpi, so
#: that they are shown at full size and no text is smaller than 10 points.
BOOK_STYLE = {
    "font.size": 10.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10.5,
    "legend.fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "figure.dpi": 100,
}

# The marks of likelihood_surfaces: the maximum before the step is a white dot, the one
# after it a black dot (each ringed in the other colour, to show on light and dark colours).
_BEFORE = {"marker": "o", "ls": "none", "mfc": "white", "mec": "k", "mew": 1.2, "ms": 7}
_AFTER = {"marker": "o", "ls": "none", "mfc": "k", "mec": "white", "mew": 1.2, "ms": 7}
_PREDICTED = {"marker": "x", "ls": "none", "color": "red", "ms": 9, "mew": 2}


def use_book_style(dpi=200):
    """Apply :data:`BOOK_STYLE` and show figures sharply in the notebook (and so in the
    book): PNG rendered at ``dpi`` and displayed at the size of :data:`BOOK_STYLE`'s
    ``figure.dpi`` (the PNG output carries its display width, so a 6.8-inch figure is
    680 pixels wide on the page and twice as sharp). Outside IPython only the style is
    applied."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    plt.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the book's kernel
        return
    shell = get_ipython()
    if shell is None:
        return
    # load the notebook's backend first: on loading, matplotlib-inline registers its own
    # PNG formatter, which would replace this one
    plt.close(plt.figure())

    def png(fig):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight",
                    facecolor=fig.get_facecolor(), edgecolor="none")  # fmt: skip
        data = buf.getvalue()
        width = int.from_bytes(data[16:20], "big")  # the PNG header's width in pixels
        return data, {"width": round(width * BOOK_STYLE["figure.dpi"] / dpi)}

    shell.display_formatter.formatters["image/png"].for_type(Figure, png)


def loglog_slope(x, y):
    """The least-squares slope of ``log y`` against ``log x`` (a convergence order)."""
    return float(onp.polyfit(onp.log(x), onp.log(y), 1)[0])


def _constraint(ax, constraint, lim):
    u = onp.linspace(-lim, lim, 2)
    if constraint == "sum":
        ax.plot(u, 1 - u, "w--", lw=1.2)
    elif constraint == "ball":
        s = onp.linspace(0, 2 * onp.pi, 400)
        ax.plot(onp.cos(s), onp.sin(s), "w--", lw=1.2)


def _surfaces(theta, m, n, lam, pts):
    """``l_j`` at every row of ``pts`` for every class ``j``: the formula of
    :func:`~argminlib.softmax.log_likelihood` on the whole grid at once (checked against
    it at the first point)."""
    from scipy.special import logsumexp

    a, b = unflatten_parameters(onp.asarray(theta), m, n)
    s = pts @ a.T + b
    ll = s - logsumexp(s, axis=1, keepdims=True) - 0.5 * lam * onp.sum(pts**2, 1)[:, None]
    reference = [log_likelihood(j, pts[0], a, b, lam) for j in range(m)]
    if not onp.allclose(ll[0], reference, rtol=1e-12, atol=1e-12):  # pragma: no cover
        raise RuntimeError("the vectorised log-likelihood disagrees with softmax's")
    return ll.T


def _window(step, j, lim):
    """A square window around the maxima of class ``j`` before and after the step and its
    prediction, with a margin (at least 1% of the full window wide)."""
    pts = onp.stack([step.before[j], step.after[j], step.predicted[j]])
    lo, hi = pts.min(0), pts.max(0)
    centre, half = (lo + hi) / 2, max(0.65 * float(onp.max(hi - lo)), 0.005 * lim)
    return centre - half, centre + half


def likelihood_surfaces(
    step, m, n, *, lam=0.1, lim=2.0, constraint=None, grid=121, target=None, i=0, zoom=False
):
    """The figure of the paper's Figures 2, 4 and 5: contours of ``l_j(x)`` for every class
    before (top row) and after (second row) the step of a
    :class:`~argminlib.softmax.StepResult`, on one colour scale (the colour bar).

    Marks: white dots, the maxima before the step (in both rows); black dots, the maxima
    after it; in the second row an arrow from each maximum before the step to the one
    after, and a red cross at the first-order prediction; a star at ``target`` (the
    upper-level loss's target for ``x*_{i+1}``) in column ``i``. ``constraint``: ``None``,
    ``"sum"`` (the line ``x_1 + x_2 = 1``) or ``"ball"`` (the unit circle), drawn dashed.
    ``zoom=True`` adds a third row that enlarges, for each class, a square window (outlined
    in the second row) around the two maxima and the prediction, where they overlap at the
    full scale. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    if n != 2:
        raise ValueError("likelihood_surfaces draws 2-D feature spaces (n = 2)")
    u = onp.linspace(-lim, lim, grid)
    X1, X2 = onp.meshgrid(u, u)
    pts = onp.stack([X1.ravel(), X2.ravel()], axis=1)
    rows = [(step.theta, "before"), (step.theta + step.dtheta, "after")]
    surfaces = [[s.reshape(X1.shape) for s in _surfaces(th, m, n, lam, pts)] for th, _ in rows]
    lo = min(float(L.min()) for row in surfaces for L in row)
    hi = max(float(L.max()) for row in surfaces for L in row)
    levels = MaxNLocator(nbins=20).tick_values(lo, hi)  # round values: round colour-bar ticks
    nrows = 3 if zoom else 2
    fig, axes = plt.subplots(nrows, m, figsize=(6.8, 6.5 if zoom else 4.9),
                             layout="constrained")  # fmt: skip

    def marks(ax, j, after):
        if after:
            start, end = step.before[j], step.after[j]
            ax.annotate(
                "",
                xy=end,
                xytext=start,
                arrowprops={"arrowstyle": "->", "color": "white", "lw": 1.5, "shrinkA": 4,
                            "shrinkB": 4},
            )  # fmt: skip
            ax.plot(*start, **_BEFORE, label="maximum before the step")
            ax.plot(*end, **_AFTER, label="maximum after the step")
            ax.plot(*step.predicted[j], **_PREDICTED, label="first-order prediction")
        else:
            ax.plot(*step.before[j], **_BEFORE, label="maximum before the step")
        if target is not None and j == i:
            ax.plot(*target, "*", color="orange", mec="k", ms=14, label="target")

    for r, (_, label) in enumerate(rows):
        for j in range(m):
            ax = axes[r, j]
            cs = ax.contourf(X1, X2, surfaces[r][j], levels=levels, cmap="viridis")
            ax.contour(X1, X2, surfaces[r][j], levels=levels, colors="k", linewidths=0.3)
            _constraint(ax, constraint, lim)
            marks(ax, j, after=r == 1)
            if r == 0:
                ax.set_title(f"$\\ell_{j + 1}(x)$")
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
            if r == 1:
                ax.set_xlabel("$x_1$")
            else:
                ax.tick_params(labelbottom=False)
            if j == 0:
                ax.set_ylabel(f"{label} the step\n$x_2$")
            else:
                ax.tick_params(labelleft=False)
    if zoom:
        after_theta = rows[1][0]
        for j in range(m):
            (x0, y0), (x1, y1) = _window(step, j, lim)
            axes[1, j].add_patch(
                Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="white", lw=1.2)
            )
            ax = axes[2, j]
            uz, vz = onp.linspace(x0, x1, 61), onp.linspace(y0, y1, 61)
            Z1, Z2 = onp.meshgrid(uz, vz)
            zpts = onp.stack([Z1.ravel(), Z2.ravel()], axis=1)
            Z = _surfaces(after_theta, m, n, lam, zpts)[j].reshape(Z1.shape)
            ax.contourf(Z1, Z2, Z, levels=levels, cmap="viridis")
            inside = levels[(levels > Z.min()) & (levels < Z.max())]
            if inside.size:
                ax.contour(Z1, Z2, Z, levels=inside, colors="k", linewidths=0.3)
            _constraint(ax, constraint, lim)
            marks(ax, j, after=True)
            ax.set(xlim=(x0, x1), ylim=(y0, y1), aspect="equal", xlabel="$x_1$")
            ax.xaxis.set_major_locator(MaxNLocator(3))
            ax.yaxis.set_major_locator(MaxNLocator(3))
            ax.tick_params(labelsize=8.5)
            ax.set_title(f"window of $\\ell_{j + 1}$, {x1 - x0:.2g} wide", fontsize=9.5)
            if j == 0:
                ax.set_ylabel("after, enlarged\n$x_2$")
    handles, labels = axes[1, i].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, facecolor="0.7")
    bar = fig.colorbar(cs, ax=axes, shrink=0.8 if not zoom else 0.6,
                       label="log-likelihood $\\ell_j(x)$")  # fmt: skip
    bar.locator = MaxNLocator(nbins=6, steps=[1, 2, 5, 10])
    return fig
