"""The built book, opened in headless Chromium with the network blocked: every equation is
typeset by the bundled MathJax, no TeX is left as text, every image loads, the console logs
no error, and each regenerated figure shows the paper's number.

Skips only where Chromium is absent (``.ci/run`` installs Debian's ``chromium``). Builds the
book first if ``_build/html`` is missing (``make test`` builds it anyway).
"""

import functools
import http.server
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

import pytest

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# page -> least number of figures it must show
PAGES = {
    "book/index.html": 0,
    "book/notation.html": 0,
    "book/ch01_introduction.html": 0,
    "book/ch02_unconstrained.html": 3,
    "book/ch03_equality.html": 1,
    "book/ch04_inequality.html": 3,
    "book/ch05_bilevel.html": 1,
    "book/ch06_scale.html": 1,
    "book/ch07_api.html": 0,
    "book/references.html": 0,
}
# the paper's figures, regenerated: page -> {figure label: the paper's number}
PAPER_FIGURES = {
    "book/ch02_unconstrained.html": {"fig-three-branches": "1", "fig-softmax-unconstrained": "2"},
    "book/ch03_equality.html": {"fig-softmax-sum": "4"},
    "book/ch04_inequality.html": {"fig-barrier": "3", "fig-softmax-ball": "5"},
    "book/ch05_bilevel.html": {"fig-bilevel": "6"},
}
MATH_PAGES = {p for p in PAGES if "ch0" in p and "ch07" not in p}


@pytest.fixture(scope="module")
def site():
    if CHROMIUM is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it"
        )
    if not (HTML / "index.html").exists():
        jb = pathlib.Path(sys.executable).parent / "jupyter-book"
        subprocess.run([str(jb), "build", str(ROOT), "--warningiserror"], check=True, cwd=ROOT)
    log = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            log.append((urllib.parse.unquote(self.path.split("?")[0]), int(code)))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(HTML))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", log
    server.shutdown()


def figure_numbers(html):
    """``{figure id: visible number}`` of the figures in a page's HTML."""
    out = {}
    for fig_id, body in re.findall(r'<figure[^>]*\sid="([^"]+)"[^>]*>(.*?)</figure>', html, re.S):
        number = re.search(r'class="caption-number">\s*Figure ([^ <]+?)\s*<', body)
        out[fig_id] = number.group(1) if number else None
    return out


def console_errors(stderr):
    """Console messages that report an error (Chromium logs them with --enable-logging)."""
    lines = [line for line in stderr.splitlines() if ":CONSOLE(" in line]
    return [line for line in lines if re.search(r"Uncaught|Error|error|Failed", line)]


def dump_dom(url, stderr=None):
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                # the network is blocked: only this machine's loopback server resolves
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=20000",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    if stderr is not None:
        stderr.append(out.stderr)
    return out.stdout


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(site, page):
    base, log = site
    start = len(log)
    stderr = []
    dom = dump_dom(f"{base}/{page}", stderr)
    errors = console_errors(stderr[0])
    assert not errors, f"{page}: the console logged errors: {errors[:3]}"
    for label, number in PAPER_FIGURES.get(page, {}).items():
        shown = figure_numbers(dom).get(label)
        assert shown == number, f"{page}: {label} shows Figure {shown}, the paper's is {number}"
    served = dict(log[start:])
    assert "</html>" in dom
    if page in MATH_PAGES:
        assert dom.count("<mjx-container") > 5, f"{page}: MathJax typeset no equations"
        assert "<mjx-merror" not in dom, f"{page}: MathJax reported a TeX error"
    # no TeX left as plain text outside code blocks (a sign of math the parser mangled)
    prose = re.sub(r"<(pre|code|script|style|mjx-container)\b.*?</\1>", "", dom, flags=re.S)
    prose = re.sub(r"<[^>]+>", " ", prose)
    leftover = re.findall(r".{0,30}(?:\$|\\[a-zA-Z]{2,}).{0,30}", prose)
    assert not leftover, f"{page}: untypeset TeX in the page text: {leftover[:3]}"
    # every image was requested from this server and served
    srcs = re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", dom)
    assert len(srcs) >= PAGES[page], f"{page}: expected {PAGES[page]} figures, found {len(srcs)}"
    page_dir = urllib.parse.urlparse(f"{base}/{page}").path.rsplit("/", 1)[0]
    for src in srcs:
        if src.startswith("data:"):
            continue
        path = urllib.parse.unquote(urllib.parse.urljoin(page_dir + "/", src).split("?")[0])
        assert served.get(path) == 200, f"{page}: image {src} was not loaded ({served.get(path)})"
        data = (HTML / path.lstrip("/")).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" or b"<svg" in data[:500], f"{path} is no image"
    missing = [p for p, code in served.items() if code >= 400 and not p.endswith("favicon.ico")]
    assert not missing, f"{page}: requests failed: {missing}"
    mathjax = [p for p in served if "tex-mml-chtml.js" in p]
    if page in MATH_PAGES:
        assert mathjax and served[mathjax[0]] == 200, "the bundled MathJax was not loaded"


def test_figures_carry_the_papers_numbers_and_the_books_own_are_b():
    """In the built HTML (no browser needed): each regenerated figure has the paper's number,
    every other figure a number B1, B2, ... and no number is used twice."""
    if not (HTML / "index.html").exists():
        pytest.skip("the book is not built (make book)")
    seen = []
    for page in PAGES:
        numbers = figure_numbers((HTML / page).read_text())
        for label, number in PAPER_FIGURES.get(page, {}).items():
            assert numbers.get(label) == number, f"{page}: {label} is Figure {numbers.get(label)}"
        for label, number in numbers.items():
            if label not in PAPER_FIGURES.get(page, {}):
                assert number and re.fullmatch(r"B\d+", number), f"{page}: {label} is {number}"
        seen += list(numbers.values())
    assert len(seen) == len(set(seen)), f"a figure number is used twice: {sorted(seen)}"


def test_no_page_declares_a_script_twice():
    """sphinx-thebe's configuration script, declared twice, was a console error on every
    page ("Identifier 'THEBE_JS_URL' has already been declared")."""
    if not (HTML / "index.html").exists():
        pytest.skip("the book is not built (make book)")
    for page in PAGES:
        html = (HTML / page).read_text()
        inline = re.findall(r"<script>(.*?)</script>", html, re.S)
        assert len(inline) == len(set(inline)), f"{page}: an inline script appears twice"
        assert html.count("const THEBE_JS_URL") <= 1, page
