"""Sphinx extension of this book (loaded from _config.yml, ``sphinx.local_extensions``).

* **The paper's numbers.** ``paper_numbers`` (in ``sphinx.config``) maps the label of a
  figure or of a sphinx-proof lemma to its number in Gould et al. (2016): it is numbered and
  referenced with the paper's number ("Figure 4", "Lemma 3.2") wherever it appears in the
  book. Every other figure is the book's own and is numbered ``B1``, ``B2``, ... in order of
  appearance, so that the two can never be confused.
* **Each chapter as a notebook.** The executed notebook of every chapter (myst-nb writes it
  to ``_build/jupyter_execute``) is copied next to the page's source, and the page's
  download menu offers it as ``.ipynb``.
* **No duplicate scripts.** sphinx-thebe registers its configuration script once per
  environment read, so pages declared ``const THEBE_JS_URL`` twice, a console error on
  every page; each script is kept once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx


def renumber_figures(app: Sphinx, env):
    """After Sphinx numbered the figures and lemmas (``env-get-updated``), give the paper's
    the paper's numbers and the book's own figures B1, B2, ... in reading order."""
    paper = {str(k): v for k, v in (app.config.paper_numbers or {}).items()}
    order = env.toctree_includes.get(env.config.root_doc, [])
    docs = [d for d in order if d in env.toc_fignumbers]
    docs += sorted(d for d in env.toc_fignumbers if d not in docs)
    own = 0
    for doc in docs:
        for kind, numbers in env.toc_fignumbers[doc].items():
            for label, _number in sorted(numbers.items(), key=lambda kv: kv[1]):
                if label in paper:
                    numbers[label] = (str(paper[label]),)
                elif kind == "figure":
                    own += 1
                    numbers[label] = (f"B{own}",)
    return []


def offer_notebook(app: Sphinx, pagename, templatename, context, doctree):
    """Copy the executed notebook of a chapter to ``_sources`` and offer it for download."""
    if doctree is None:
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.exists():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def unique_scripts(app: Sphinx, pagename, templatename, context, doctree):
    """Keep each script of the page once: the same file, or the same inline body (the
    duplicates are registered once with ``filename=None``, once with ``""``)."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", str(script)) or "", attributes.get("body", ""))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app: Sphinx):
    app.add_config_value("paper_numbers", {}, "env")
    app.connect("env-get-updated", renumber_figures, priority=900)
    app.connect("html-page-context", offer_notebook, priority=400)
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
