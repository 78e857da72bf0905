"""Run the book's chapters with papermill and read back the values they glue.

Used by tests/test_chapters.py. Each chapter is a jupytext MyST notebook listed in _toc.yml;
it is converted to .ipynb in a temporary folder, executed with the parameters of its fast
mode injected after the cell tagged ``parameters``, and every ``myst_nb.glue`` call is read
back as ``{name: value}``.
"""

from __future__ import annotations

import ast
import pathlib
import tempfile
from concurrent.futures import ThreadPoolExecutor

import jupytext
import nbformat
import papermill
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNEL = "argminlib"


def toc_chapters():
    """The chapter files of _toc.yml, in order (the root page has no code)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []
    for entry in toc.get("chapters", []):
        files.append(entry["file"])
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return [f for f in files if (ROOT / f"{f}.md").read_text().startswith("---\njupytext")]


class ChapterError(AssertionError):
    pass


def book_code_cells(chapter):
    """The code cells as the book's build (myst-nb, with _config.yml's MyST extensions)
    reads them; they must equal jupytext's, or the tests would run another notebook."""
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    ext = set(config.get("parse", {}).get("myst_enable_extensions", []))
    nb = read_myst_markdown_notebook(
        (ROOT / f"{chapter}.md").read_text(), MdParserConfig(enable_extensions=ext)
    )
    return [c.source for c in nb.cells if c.cell_type == "code"]


def jupytext_code_cells(chapter):
    return [c.source for c in jupytext.read(ROOT / f"{chapter}.md").cells if c.cell_type == "code"]


def _value(output):
    prefix = output["metadata"]["scrapbook"].get("mime_prefix", "")
    text = output.get("data", {}).get(prefix + "text/plain")
    if text is None:
        return None
    if text.startswith("np.float64(") or text.startswith("np.int64("):
        text = text[text.index("(") + 1 : -1]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        try:
            return float(text)
        except ValueError:
            return text


def glued_values(nb):
    """``{name: value}`` for every ``glue`` call in an executed notebook."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                values[name] = _value(out)
    return values


def run_chapter(chapter, parameters, workdir=None):
    """Execute ``chapter`` (e.g. ``"book/ch02_unconstrained"``) with papermill; return
    its glued values. A failing cell raises :class:`ChapterError` naming chapter and cell."""
    src = ROOT / f"{chapter}.md"
    nb = jupytext.read(src)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(workdir or tmp)
        ipynb = tmp / (src.stem + ".ipynb")
        out = tmp / (src.stem + ".out.ipynb")
        nbformat.write(nb, ipynb)
        try:
            papermill.execute_notebook(
                str(ipynb),
                str(out),
                parameters=parameters,
                kernel_name=KERNEL,
                cwd=str(src.parent),
                progress_bar=False,
                log_output=False,
            )
        except papermill.PapermillExecutionError as err:
            raise ChapterError(
                f"{chapter}.md failed in cell {err.exec_count} ({err.ename}: {err.evalue})"
            ) from None
        return glued_values(nbformat.read(out, as_version=4))


def run_chapters(jobs, workers=2):
    """Run ``{key: (chapter, parameters)}`` concurrently (papermill kernels are processes);
    returns ``{key: values or ChapterError}``."""

    def one(item):
        key, (chapter, params) = item
        try:
            return key, run_chapter(chapter, params)
        except ChapterError as err:
            return key, err

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, jobs.items()))
