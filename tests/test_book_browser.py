"""The built book, opened in headless Chromium with the network blocked: every equation is
typeset by the bundled MathJax, no TeX is left as text, and every image loads.

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
    "book/ch01_introduction.html": 0,
    "book/ch02_unconstrained.html": 2,
    "book/ch03_equality.html": 1,
    "book/ch04_inequality.html": 2,
    "book/ch05_bilevel.html": 1,
    "book/ch06_scale.html": 1,
    "book/ch07_api.html": 0,
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


def dump_dom(url):
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
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(site, page):
    base, log = site
    start = len(log)
    dom = dump_dom(f"{base}/{page}")
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
