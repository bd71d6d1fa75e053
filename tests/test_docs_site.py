"""The built documentation site works offline: math is typeset without a CDN, nested lists
stay nested, figures are there.

The site is built once (``mkdocs build --strict`` into a temporary folder) and its HTML is
read. When a Chromium is installed (``/usr/bin/chromium``; CI does not have one) the findings
and theory pages are also loaded headless and checked as laid out; without one that test is
skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")
                 if Path(p).exists()), None)
# Pages that have formulas in their markdown, and the pages the browser check loads.
THEORY_PAGES = ("theory/spiked", "theory/muon_escape", "theory/sgd_law")
BROWSER_PAGES = ("findings", *THEORY_PAGES)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                        str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def _page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


class _Lists(HTMLParser):
    """The deepest nesting of <ul>/<ol> in a page, and its <img> sources."""

    def __init__(self):
        super().__init__()
        self.depth = self.max_depth = 0
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("ul", "ol"):
            self.depth += 1
            self.max_depth = max(self.max_depth, self.depth)
        elif tag == "img":
            self.images.append(dict(attrs).get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("ul", "ol"):
            self.depth -= 1


def _parse(text: str) -> _Lists:
    p = _Lists()
    p.feed(text)
    return p


def _markdown_nests(md: str) -> bool:
    """Whether a markdown file has a list item indented under another (outside code)."""
    return re.search(r"^\s*(?:[-*]|\d+\.) .*\n(?:.*\n)*?^ {2,}(?:[-*]|\d+\.) ", md, re.M) \
        is not None


def test_no_math_script_from_a_cdn(site):
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "mathjax" not in text.lower(), page
        assert "katex" not in text.lower(), page
        assert not re.search(r"<script[^>]+src=\"https?://", text), page


def test_formulas_are_mathml(site):
    for name in THEORY_PAGES:
        text = _page(site, name)
        assert "<math" in text, name
        # no formula left as TeX for a script to typeset
        assert not re.search(r'class="arithmatex">\\[(\[]', text), name


def test_nested_lists_stay_nested(site):
    nests = [p for p in DOCS.rglob("*.md") if _markdown_nests(p.read_text(encoding="utf-8"))]
    assert any(p.name == "findings.md" for p in nests)
    for md in nests:
        rel = md.relative_to(DOCS).with_suffix("")
        html = site / rel / "index.html" if rel.name != "index" else site / rel.parent / (
            "index.html")
        if not html.exists():  # a page left out of the site (e.g. not in the nav)
            continue
        assert _parse(html.read_text(encoding="utf-8")).max_depth >= 2, md


def test_no_list_flattened_into_a_paragraph(site):
    """A list written without the blank line Python-Markdown needs before it ends up as
    "...: - a; - b" inside one paragraph."""
    flat = re.compile(r"[:;,.]\s+(?:-|\d+\.)\s+\S")
    for page in site.rglob("index.html"):
        if page.parent.name == "api":
            continue
        for m in re.finditer(r"<p>(.*?)</p>", page.read_text(encoding="utf-8"), re.S):
            text = re.sub(r"<[^>]+>", "", m.group(1))
            assert not flat.search(text), (str(page.relative_to(site)), text[:200])


def test_findings_figures_present(site):
    imgs = _parse(_page(site, "findings")).images
    assert len(imgs) >= 5
    for src in imgs:
        assert (site / "findings" / src).resolve().exists(), src


# Run in the page after load: formulas laid out as MathML (Chromium's MathML Core gives
# <math> a 'math' display), every image decoded, nested lists present. The result is written
# into the DOM, which --dump-dom prints.
_PROBE = """
<script>
window.addEventListener('load', () => {
  const maths = [...document.querySelectorAll('math')];
  const r = {
    maths: maths.length,
    laid_out: maths.filter(m => getComputedStyle(m).display.includes('math')
                              && m.getBoundingClientRect().width > 0).length,
    images: document.querySelectorAll('article img').length,
    broken: [...document.querySelectorAll('article img')]
              .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    nested: document.querySelectorAll('article li > ul, article li > ol').length,
    // display formulas cut off (a vertical scroll bar instead of the whole formula)
    clipped: [...document.querySelectorAll('div.arithmatex')]
               .filter(d => d.scrollHeight > d.clientHeight + 2).length,
  };
  const pre = document.createElement('pre');
  pre.id = 'probe-result';
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>
"""


def _browse(site: Path, name: str) -> dict:
    page = site / name / "index.html"
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                     encoding="utf-8")
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--allow-file-access-from-files", "--virtual-time-budget=10000",
                        "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                       timeout=120)
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', r.stdout, re.S)
    assert m, r.stderr[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (/usr/bin/chromium)")
def test_pages_in_a_headless_browser(site):
    assert shutil.which(CHROMIUM)
    findings = _browse(site, "findings")
    assert findings["images"] >= 5 and findings["broken"] == [], findings
    assert findings["nested"] > 0, findings
    for name in THEORY_PAGES:
        r = _browse(site, name)
        assert r["maths"] > 0 and r["laid_out"] == r["maths"], (name, r)
        assert r["clipped"] == 0, (name, r)
