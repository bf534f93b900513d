"""The web page of ``infinigram serve`` in a real browser.

Headless Chromium from the system (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium through the system chromedriver:
nothing is downloaded at test time (Selenium Manager is never asked, and
``SE_OFFLINE=1``). A real server runs as a subprocess
(``python -m infinigram serve NAME=PATH ... --port FREE`` on 127.0.0.1) over
two small indexes built from the shared corpora, and every number the page
shows is checked against the Python API (``Index.count``, ``infgram_ntd``,
``infgram_logprobs``, ``maximal_matches``, ``get_doc``).

If Chromium or its driver is missing the tests FAIL, saying what to install:
in CI the browser test must run. ``INFINIGRAM_SKIP_BROWSER=1`` skips them
explicitly. Screenshots go to ``docs/img/`` (``INFINIGRAM_SCREENSHOT_DIR``
overrides it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import infinigram
from conftest import real_records, write_jsonl

CHROMIUM = os.environ.get("INFINIGRAM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("INFINIGRAM_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOT_DIR = os.environ.get("INFINIGRAM_SCREENSHOT_DIR", os.path.join(REPO, "docs", "img"))
WAIT = 20.0  # seconds for any one page action

# A document whose text and metadata are markup: the page must show them as text.
HOSTILE = {
    "text": "markup test <b>bold</b> <img src=x onerror=\"window.__xss=1\"> <script>window.__xss=2</script> end",
    "id": "<i>hostile</i>",
    "url": "javascript:window.__xss=3",
}

# A text for the trace view: invented sentences around a passage of the corpus.
TRACE_INTRO = "Our notes are written in Markdown by a small team, and the\n"
TRACE_OUTRO = "\nThe rest of this paragraph was written for the test and occurs nowhere.\n"


# --------------------------------------------------------------- environment
def _require_browser() -> None:
    if os.environ.get("INFINIGRAM_SKIP_BROWSER") == "1":
        pytest.skip("INFINIGRAM_SKIP_BROWSER=1: browser tests skipped on request")
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        pytest.fail(f"the browser test needs Chromium and its driver; not found: {', '.join(missing)}. "
                    f"Install them with: {INSTALL_HINT}  (or set INFINIGRAM_SKIP_BROWSER=1 to skip explicitly)",
                    pytrace=False)
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail("the browser test needs selenium (pip install 'infinigram[test]' or pip install selenium)",
                    pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(url: str, body: Optional[Dict[str, Any]] = None, key: Optional[str] = None) -> Tuple[int, Any]:
    """(status, parsed JSON) of a GET (or a POST of ``body``)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode("utf-8", "replace")


class Server:
    """``python -m infinigram serve`` in a subprocess on 127.0.0.1."""

    def __init__(self, indexes: Dict[str, str], extra: Tuple[str, ...] = ()) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(infinigram.__file__)))
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.pop("INFINIGRAM_API_KEY", None)
        self.log = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "infinigram", "serve", *[f"{n}={p}" for n, p in indexes.items()],
               "--host", "127.0.0.1", "--port", str(self.port), *extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"`{' '.join(cmd)}` exited with {self.proc.returncode}:\n{self.output()}", pytrace=False)
            try:
                status, _ = _http(self.url + "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the server did not answer /healthz within 60 s:\n{self.output()}", pytrace=False)
            time.sleep(0.1)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def indexes(tmp_path_factory, bpe_tokenizer_path) -> Dict[str, infinigram.Index]:
    """Two small indexes of the real corpora plus one markup document: one
    with the test BPE tokenizer (u16 tokens), one of bytes."""
    _require_browser()
    d = tmp_path_factory.mktemp("browser")
    src = write_jsonl(str(d / "corpus.jsonl"), real_records(20, 12000) + [HOSTILE])
    out = {}
    for name, tok in (("pydocs", bpe_tokenizer_path), ("pydocs-bytes", "bytes")):
        infinigram.build(src, str(d / name), tokenizer=tok, progress=False)
        out[name] = infinigram.Index(str(d / name))
    return out


@pytest.fixture(scope="module")
def server(indexes) -> Iterator[Server]:
    s = Server({n: ix.path for n, ix in indexes.items()})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    _require_browser()
    os.environ["SE_OFFLINE"] = "1"  # Selenium Manager must never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="infinigram-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--disable-extensions", "--force-device-scale-factor=1",
                 "--window-size=1280,1000", "--lang=en-US", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception as e:  # a broken install: say what to do
        shutil.rmtree(profile, ignore_errors=True)
        pytest.fail(f"could not start headless Chromium ({CHROMIUM}) through {CHROMEDRIVER}: {e}\n"
                    f"Install or repair them with: {INSTALL_HINT}", pytrace=False)
    drv.set_script_timeout(WAIT)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------- helpers
class Page:
    """Small helpers over the driver for this page."""

    def __init__(self, drv: Any, base: str) -> None:
        self.d = drv
        self.base = base

    def open(self, query: str = "", width: int = 1280, height: int = 1000) -> None:
        self.d.set_window_size(width, height)
        self.d.get(self.base + "/" + query)
        self.wait_js("return document.body.dataset.ready === 'true' || !document.getElementById('error').hidden")

    def wait_js(self, script: str, *args: Any) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.d, WAIT, poll_frequency=0.05).until(lambda d: d.execute_script(script, *args))

    def wait_done(self, card_id: str) -> str:
        """Waits until a result card has finished (done or error); returns its state."""
        return self.wait_js(
            "const c = document.getElementById(arguments[0]);"
            "return c && !c.hidden && (c.dataset.state === 'done' || c.dataset.state === 'error') && c.dataset.state;",
            card_id)

    def el(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.d.find_element(By.CSS_SELECTOR, css)

    def js(self, script: str, *args: Any) -> Any:
        return self.d.execute_script(script, *args)

    def set_query(self, text: str, mode: str = "text") -> None:
        self.el(f"#mode-{mode}").find_element("xpath", "..").click()
        q = self.el("#query-input")
        q.clear()
        # send_keys types character by character; set the value directly for speed and exactness
        self.js("const e = arguments[0]; e.value = arguments[1]; e.dispatchEvent(new Event('input'));", q, text)

    def click(self, css: str) -> None:
        self.el(css).click()

    def error(self) -> Optional[Dict[str, str]]:
        return self.js("const e = document.getElementById('error'); if (e.hidden) return null;"
                       "return {title: document.getElementById('error-title').textContent,"
                       " message: document.getElementById('error-message').textContent, status: e.dataset.status};")

    def no_horizontal_overflow(self) -> Tuple[int, int]:
        return self.js("return [document.scrollingElement.scrollWidth, window.innerWidth];")

    def screenshot(self, name: str, height: Optional[int] = None) -> str:
        os.makedirs(SHOT_DIR, exist_ok=True)
        if height is not None:
            w = self.js("return window.outerWidth;")
            self.d.set_window_size(w, height)
        path = os.path.join(SHOT_DIR, name)
        assert self.d.save_screenshot(path), path
        return path

    def js_errors(self) -> List[str]:
        """Severe console messages but failed resource loads (4xx answers the tests provoke)."""
        try:
            logs = self.d.get_log("browser")
        except Exception:
            return []
        return [e["message"] for e in logs
                if e.get("level") == "SEVERE" and "Failed to load resource" not in e.get("message", "")]


@pytest.fixture()
def page(driver, server) -> Iterator[Page]:
    p = Page(driver, server.url)
    p.js_errors()  # drop earlier messages
    yield p
    errors = p.js_errors()
    assert not errors, f"JavaScript errors in the page: {errors}"


def _trace_text(ix: infinigram.Index) -> str:
    """Invented sentences around a passage of the first English document."""
    doc = ix.get_doc(0).text
    i = max(0, doc.find("Development of the documentation"))
    j = doc.find("\n", i + 150)  # whole lines
    passage = doc[i:j if j > 0 else i + 170]
    return TRACE_INTRO + passage + TRACE_OUTRO


def _doc_rows(p: Page, container: str) -> List[Dict[str, Any]]:
    return p.js(
        "return [...document.querySelectorAll(arguments[0] + ' .doc')].map(d => ({"
        " doc_ix: Number(d.dataset.docIx), offset: d.dataset.offset === undefined ? null : Number(d.dataset.offset),"
        " match: d.querySelector('.match').textContent,"
        " before: d.querySelector('.before').textContent, after: d.querySelector('.after').textContent,"
        " meta: Object.fromEntries([...d.querySelectorAll('.meta[data-key]')].map(m =>"
        "   [m.dataset.key, m.querySelector('.meta-v').textContent]))}));", container)


# --------------------------------------------------------------------- tests
def test_count_documents_and_next_tokens(page: Page, indexes) -> None:
    ix = indexes["pydocs"]
    query = " the Python"  # byte-level BPE: the leading space is part of the token
    want = ix.count(query)
    assert want > 10, "the test query must occur several times"
    page.open()
    # the picker lists the served indexes
    names = page.js("return [...document.querySelectorAll('#index-select option')].map(o => o.value);")
    assert sorted(names) == sorted(indexes)
    page.js("const s = document.getElementById('index-select'); s.value = 'pydocs';"
            "s.dispatchEvent(new Event('change'));")

    # count, as text
    page.set_query(query)
    page.click("#btn-count")
    assert page.wait_done("count-result") == "done", page.error()
    shown = page.el("#count-value")
    assert int(shown.get_attribute("data-count")) == want
    assert int(shown.text.replace(",", "")) == want
    assert "ms" in page.el("#count-latency").text
    chips = page.js("return [...document.querySelectorAll('#query-tokens .chip')].map(c => Number(c.dataset.tokenId));")
    assert chips == ix.encode(query).tolist()

    # next tokens (∞-gram): the bars are the most frequent continuations
    page.click("#btn-ntd")
    assert page.wait_done("ntd-result") == "done", page.error()
    rows = page.js("return [...document.querySelectorAll('#ntd-chart .bar-row')].map(r =>"
                   " [Number(r.dataset.tokenId), Number(r.dataset.count), r.querySelector('.bar-fill').style.width]);")
    ntd = ix.infgram_ntd(query)
    assert rows and len(rows) == min(25, len(ntd.dist))
    for tok, cnt, _ in rows:
        assert ntd.dist[tok][0] == cnt
    assert [c for _, c, _ in rows] == sorted((c for c, _ in ntd.dist.values()), reverse=True)[:len(rows)]
    top = rows[0][1]
    for _, cnt, width in rows:  # bar lengths in proportion to the probabilities
        assert width.endswith("%") and abs(float(width[:-1]) - max(0.5, 100 * cnt / top)) < 0.01

    # documents: the highlighted span is the query, the metadata is the document's
    page.click("#btn-docs")
    assert page.wait_done("docs-result") == "done", page.error()
    docs = _doc_rows(page, "#docs-list")
    assert len(docs) == min(10, want)
    where = ix.locate(query, want)
    occurrences = set(zip(where.doc_ix.tolist(), where.offset.tolist()))
    for d in docs:
        assert d["match"] == query
        assert (d["doc_ix"], d["offset"]) in occurrences
        meta = ix.get_doc(d["doc_ix"]).metadata
        assert set(d["meta"]) == set(meta)
        for k, v in meta.items():
            full_v = v if isinstance(v, str) else json.dumps(v)
            assert d["meta"][k] == (full_v if len(full_v) <= 120 else full_v[:119] + "…")
    # the match sits in its document: the window is a substring of the full text
    first = docs[0]
    full = ix.get_doc(first["doc_ix"]).text
    assert first["before"] + first["match"] + first["after"] in full
    page.screenshot("serve.png", height=1080)
    page.d.set_window_size(1280, 1000)

    # the whole document, still highlighted
    page.click("#docs-list .doc .doc-full")
    page.wait_js("return document.querySelector('#docs-list .doc').classList.contains('full');")
    d0 = page.js("const d = document.querySelector('#docs-list .doc');"
                 "return [d.querySelector('.before').textContent, d.querySelector('.match').textContent,"
                 " d.querySelector('.after').textContent];")
    assert "".join(d0) == full and d0[1] == query

    # clicking a bar appends its token to the query and asks again
    bar = 1 if len(rows) > 1 else 0
    piece = page.js("return document.querySelectorAll('#ntd-chart .bar-row')[arguments[0]].dataset.piece;", bar)
    page.js("document.querySelectorAll('#ntd-chart .bar-row')[arguments[0]].querySelector('.bar-label').click();", bar)
    for card in ("count-result", "ntd-result", "docs-result"):
        assert page.wait_done(card) == "done", page.error()
    longer = query + piece
    assert page.js("return document.getElementById('query-input').value;") == longer
    assert int(page.el("#count-value").get_attribute("data-count")) == ix.count(longer) > 0
    assert all(d["match"] == longer for d in _doc_rows(page, "#docs-list"))

    # the same count by token ids
    ids = ix.encode(query).tolist()
    page.set_query(" ".join(map(str, ids)), mode="ids")
    page.click("#btn-count")
    page.wait_js("return document.getElementById('count-result').dataset.state === 'done';")
    assert int(page.el("#count-value").get_attribute("data-count")) == ix.count(ids)

    # another index, picked in the page
    page.js("const s = document.getElementById('index-select'); s.value = 'pydocs-bytes';"
            "s.dispatchEvent(new Event('change'));")
    page.set_query(query)
    page.click("#btn-count")
    assert page.wait_done("count-result") == "done", page.error()
    assert int(page.el("#count-value").get_attribute("data-count")) == indexes["pydocs-bytes"].count(query)
    assert "index=pydocs-bytes" in page.d.current_url


def test_api_errors_are_shown(page: Page, server: Server, indexes) -> None:
    page.open("?index=pydocs")
    bad = [1, 2, 10 ** 9]  # a token id outside the vocabulary
    status, body = _http(server.url + "/v1/pydocs/count", {"query_ids": bad})
    assert 400 <= status < 500 and isinstance(body, dict) and "error" in body, (status, body)
    page.set_query(" ".join(map(str, bad)), mode="ids")
    page.click("#btn-count")
    page.wait_js("return !document.getElementById('error').hidden;")
    err = page.error()
    assert err["message"] == body["error"]["message"]
    assert err["status"] == str(status) and str(status) in err["title"]
    assert page.js("return document.getElementById('count-result').dataset.state;") == "error"
    # a good query clears it
    page.set_query("Python", mode="text")
    page.click("#btn-count")
    assert page.wait_done("count-result") == "done"
    assert page.error() is None
    # bad input caught in the page itself
    page.set_query("12 x", mode="ids")
    page.click("#btn-count")
    page.wait_js("return !document.getElementById('error').hidden;")
    assert "not a token id" in page.error()["message"]


def test_documents_are_text_not_markup(page: Page, indexes) -> None:
    page.open("?index=pydocs-bytes")  # bytes: any substring is a query
    page.set_query("<b>bold</b>")
    page.click("#btn-docs")
    assert page.wait_done("docs-result") == "done", page.error()
    docs = _doc_rows(page, "#docs-list")
    assert len(docs) == 1 and docs[0]["match"] == "<b>bold</b>"
    assert docs[0]["meta"]["id"] == HOSTILE["id"]
    assert page.js("return document.querySelectorAll('#docs-list b, #docs-list i, #docs-list img, "
                   "#docs-list script, #docs-list a').length;") == 0
    assert "<img src=x" in docs[0]["after"]
    assert page.js("return window.__xss === undefined;")


def test_trace_text(page: Page, indexes) -> None:
    ix = indexes["pydocs"]
    text = _trace_text(ix)
    ids = ix.encode(text).tolist()
    assert ix.decode(ids) == text
    page.open("?index=pydocs&tab=text")
    assert page.js("return !document.getElementById('panel-text').hidden;")
    ta = page.el("#text-input")
    page.js("arguments[0].value = arguments[1];", ta, text)
    min_len = int(page.el("#min-len").get_attribute("value"))
    assert min_len == 4  # the default for subword tokens
    page.click("#btn-trace")
    assert page.wait_done("score-result") == "done", page.error()
    assert page.wait_done("mm-result") == "done", page.error()

    # one coloured span per token: ids, ∞-gram suffix lengths, and the pieces add up to the text
    toks = page.js("return [...document.querySelectorAll('#score-tokens .tok')].map(t =>"
                   " [t.textContent, Number(t.dataset.suffixLen), Number(t.dataset.tokenId), t.className]);")
    sc = ix.infgram_logprobs(ids)
    assert [t[2] for t in toks] == ids
    assert [t[1] for t in toks] == sc.suffix_len.tolist()
    assert "".join(t[0] for t in toks) == text
    buckets = [int(next(c for c in t[3].split() if c[:1] == "b" and c[1:].isdigit())[1:]) for t in toks]
    bounds = [0, 1, 2, 4, 8, 16, 32]
    assert buckets == [sum(L > b for b in bounds) for L in sc.suffix_len.tolist()]
    assert max(buckets) >= 5 and min(buckets) <= 2  # the passage is hot, the invented text is not

    # maximal matches: the same spans as the Python API
    mm = ix.maximal_matches(ids, min_len=min_len)
    items = page.js("return [...document.querySelectorAll('#mm-list .mm-item')].map(li =>"
                    " [Number(li.dataset.start), Number(li.dataset.end)]);")
    assert items == [[m.start, m.end] for m in mm]
    assert mm, "the passage from the corpus must give a maximal match"
    k = max(range(len(mm)), key=lambda i: mm[i].end - mm[i].start)
    longest = mm[k]
    # underlined in the token view
    marked = page.js("return [...document.querySelectorAll('#score-tokens .tok')].map(t => t.classList.contains('in-mm'));")
    for i, on in enumerate(marked):
        assert on == any(m.start <= i < m.end for m in mm)

    # clicking a span lists its source documents
    page.click(f"#mm-list .mm-item[data-mm-ix='{k}'] .mm-span")
    assert page.wait_done("mm-docs-result") == "done", page.error()
    span_ids = ids[longest.start:longest.end]
    span_text = ix.decode(span_ids)
    docs = _doc_rows(page, "#mm-docs")
    assert 1 <= len(docs) <= 10 and len(docs) == min(10, ix.count(span_ids))
    where = ix.locate(span_ids, 1000)
    occurrences = set(zip(where.doc_ix.tolist(), where.offset.tolist()))
    for d in docs:
        assert d["match"] == span_text
        assert (d["doc_ix"], d["offset"]) in occurrences
    sel = page.js("return [...document.querySelectorAll('#score-tokens .tok')].map(t => t.classList.contains('sel'));")
    assert [i for i, s in enumerate(sel) if s] == list(range(longest.start, longest.end))
    page.js("window.scrollTo(0, 0);")
    page.screenshot("serve-trace.png", height=1080)

    # clicking a token of a span selects that span too
    other = next((j for j in range(len(mm)) if j != k), None)
    if other is not None:
        page.js("document.querySelector(\"#score-tokens .tok[data-mm='\" + arguments[0] + \"']\").click();", other)
        page.wait_js("return document.getElementById('mm-docs-result').dataset.mmIx === String(arguments[0])"
                     " && document.getElementById('mm-docs-result').dataset.state === 'done';", other)


def test_phone_width(page: Page, indexes) -> None:
    ix = indexes["pydocs"]
    page.open("?index=pydocs", width=390, height=990)
    width = page.js("return window.innerWidth;")
    assert width <= 400
    page.set_query(" the Python")
    page.click("#btn-count")
    assert page.wait_done("count-result") == "done"
    page.click("#btn-ntd")
    assert page.wait_done("ntd-result") == "done"
    page.click("#btn-docs")
    assert page.wait_done("docs-result") == "done"
    sw, iw = page.no_horizontal_overflow()
    assert sw <= iw, f"the search view overflows at phone width: scrollWidth {sw} > innerWidth {iw}"
    page.js("window.scrollTo(0, 0);")
    page.screenshot("serve-phone.png")
    page.click("#tab-text")
    page.js("arguments[0].value = arguments[1];", page.el("#text-input"), _trace_text(ix))
    page.click("#btn-trace")
    assert page.wait_done("score-result") == "done"
    assert page.wait_done("mm-result") == "done"
    page.click("#mm-list .mm-item .mm-span")
    assert page.wait_done("mm-docs-result") == "done"
    sw, iw = page.no_horizontal_overflow()
    assert sw <= iw, f"the trace view overflows at phone width: scrollWidth {sw} > innerWidth {iw}"


def test_api_key(driver, indexes) -> None:
    """A server started with --api-key: the page loads (static files are public),
    says the key is missing, and works once it is given in the field or as ?key=."""
    key = "s3cret-key"
    s = Server({"pydocs": indexes["pydocs"].path}, extra=("--api-key", key))
    try:
        p = Page(driver, s.url)
        p.js_errors()
        p.open()
        p.wait_js("return !document.getElementById('error').hidden;")
        err = p.error()
        assert err["status"] == "401", err
        assert p.js("return document.getElementById('key-box').open;")
        p.js("arguments[0].value = arguments[1];", p.el("#api-key"), key)
        p.click("#api-key-apply")
        p.wait_js("return document.body.dataset.ready === 'true';")
        assert p.error() is None
        p.set_query(" the Python")
        p.click("#btn-count")
        assert p.wait_done("count-result") == "done", p.error()
        assert int(p.el("#count-value").get_attribute("data-count")) == indexes["pydocs"].count(" the Python")

        # the key in the URL; a wrong one is refused with the server's message
        p.js("sessionStorage.clear();")
        p.open(f"?key={key}&index=pydocs&q=%20the%20Python")  # q= runs the count and documents at once
        assert p.wait_done("count-result") == "done", p.error()
        assert p.wait_done("docs-result") == "done", p.error()
        assert int(p.el("#count-value").get_attribute("data-count")) == indexes["pydocs"].count(" the Python")
        assert "key=" not in p.d.current_url  # kept for the tab, out of the address bar
        p.js("sessionStorage.clear();")
        p.open("?key=wrong")
        p.wait_js("return !document.getElementById('error').hidden;")
        status, body = _http(s.url + "/v1/indexes", key="wrong")
        assert status == 401 and p.error()["message"] == body["error"]["message"]
        assert not p.js_errors()
    finally:
        s.stop()
