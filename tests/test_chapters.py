"""Every chapter of the book, executed with papermill in fast mode, as a regression test.

The chapters record their checks with ``myst_nb.glue``; these tests assert on those values,
so a change in argminlib that breaks a figure's data fails here with the chapter named.
"""

import pytest
from chapters import ChapterError, run_chapters, toc_chapters

pytestmark = pytest.mark.chapter

# Fast-mode parameters injected into each chapter's `parameters` cell.
FAST = {
    "book/ch01_introduction": {"n": 4},
}


@pytest.fixture(scope="session")
def results():
    jobs = {ch: (ch, FAST.get(ch, {})) for ch in toc_chapters()}
    jobs.update({f"{ch}#again": (ch, FAST.get(ch, {})) for ch in toc_chapters()})
    return run_chapters(jobs, workers=2)


def values(results, chapter):
    out = results[chapter]
    if isinstance(out, ChapterError):
        pytest.fail(str(out))
    return out


def test_every_chapter_has_fast_parameters():
    assert set(toc_chapters()) == set(FAST), "add the new chapter's fast mode to FAST"


@pytest.mark.parametrize("chapter", toc_chapters())
def test_chapter_is_deterministic(results, chapter):
    first, second = values(results, chapter), values(results, f"{chapter}#again")
    assert first, f"{chapter} glued no values"
    assert first == second


def test_ch01_introduction(results):
    v = values(results, "book/ch01_introduction")
    assert v["ch1_n"] == 4
    assert v["ch1_fd_error"] < 1e-6
