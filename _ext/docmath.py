"""Docstring formulas as math on the API page (``autodoc-process-docstring``).

argminlib's docstrings write formulas as inline literals in plain ASCII, readable in a
terminal: ``g'(x) = -f_YY^{-1} f_XY``, ``1/2 ||X y - tau||^2``. :func:`to_latex` turns such a
literal into LaTeX, and the hook renders it with ``:math:``, but only when it is clearly a
formula (it has a superscript, a norm, a sum, an argmin or one of the paper's partial
derivatives ``f_Y``, ``f_YY``, ``f_XY``) and every word in it is a symbol, a known function
or a Greek letter. Anything else (code, option names) stays a literal, so a docstring can
never be rendered worse than before.
"""

from __future__ import annotations

import re

FORMULA = re.compile(r"\^|_\{|\b[a-z]+_[A-Z]{1,2}\b|\|\||\bsum_|\bargm(?:in|ax)_")
LITERAL = re.compile(r"``([^`]+)``")
GREEK = {
    "lam": r"\lambda",
    "lambda": r"\lambda",
    "nu": r"\nu",
    "mu": r"\mu",
    "phi": r"\phi",
    "theta": r"\theta",
    "eps": r"\epsilon",
    "tau": r"\tau",
}
FUNCTIONS = {
    "sum": r"\sum",
    "log": r"\log",
    "exp": r"\exp",
    "diag": r"\operatorname{diag}",
    "argmin": r"\operatorname{argmin}",
    "argmax": r"\operatorname{argmax}",
    "grad": r"\nabla",
    "max": r"\max",
}
#: words that may appear besides single letters, Greek letters and functions
SUBSCRIPTS = {"XY", "YY", "XX", "xx", "YX", "Y", "X", "val"}
#: symbols written as words in ASCII
SYMBOLS = {"abar": r"\bar a", "dtheta": r"\Delta\theta", "Dg": "Dg"}
#: words that stand for a named quantity, set upright
NAMES = {"target", "size", "after", "before", "predicted", "loss", "new", "gtol", "armijo"}
WORD = re.compile(r"[A-Za-z]+")
#: a derivative written as a quotient of differentials: dz/dx, dF/dz
DERIVATIVE = re.compile(r"\bd([A-Za-z])/d([A-Za-z])\b")


def _words_ok(text):
    text = DERIVATIVE.sub("", text.replace("d/dx", "").replace("s.t.", ""))
    for w in WORD.findall(text):
        if len(w) == 1 or w in GREEK or w in FUNCTIONS or w in SUBSCRIPTS:
            continue
        if w in SYMBOLS or w in NAMES:
            continue
        return False
    return True


def to_latex(text):
    """The LaTeX of an ASCII formula, or ``None`` if ``text`` does not look like one."""
    if not FORMULA.search(text) or not _words_ok(text) or re.search(r"[\[\]:;]|->|\*\s", text):
        return None
    s = DERIVATIVE.sub(r"\\tfrac{\\mathrm{d}\1}{\\mathrm{d}\2}", text)
    s = s.replace("d/dx", r"\tfrac{\mathrm{d}}{\mathrm{d}x}")
    s = s.replace("s.t.", r"\text{ s.t. }")
    s = s.replace("1/2", r"\tfrac12")
    s = s.replace("||", r"\|")
    s = re.sub(r"\b([A-Za-z])\*", r"\1^\\star", s)  # y*(x), x*_i
    s = s.replace("^{-T}", r"^{-\top}").replace("^T", r"^\top")
    s = s.replace("<=", r"\le ").replace(">=", r"\ge ").replace("!=", r"\ne ")
    s = re.sub(r"_([A-Za-z]{2,})\b", lambda m: "_{" + m.group(1) + "}", s)  # f_YY, y_val
    s = s.replace("_{val}", r"_{\mathrm{val}}")

    def word(m):
        w = m.group(0)
        if w in NAMES:
            return r"\mathrm{" + w + "}"
        return GREEK.get(w) or FUNCTIONS.get(w) or SYMBOLS.get(w) or w

    s = re.sub(r"(?<![A-Za-z\\{])[A-Za-z]{2,}(?![A-Za-z])", word, s)
    s = re.sub(r"(?<![A-Za-z\\])R\^", r"\\mathbb{R}^", s)
    s = re.sub(r"(?<![A-Za-z\\])l_([ij])\b", r"\\ell_\1", s)  # l_i: the log-likelihoods
    s = s.replace("~", r"\approx ")
    return s


def convert(line):
    def one(m):
        latex = to_latex(m.group(1))
        return m.group(0) if latex is None else f":math:`{latex}`"

    return LITERAL.sub(one, line)


def process_docstring(app, what, name, obj, options, lines):
    lines[:] = [convert(line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", process_docstring)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
