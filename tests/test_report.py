"""The HTML report: markdown subset -> HTML with inlined figures, and the page opened in headless
Chromium loads with no script errors and every image decoded."""

import re
import shutil
import subprocess

import pytest

from pyvi.pipeline import run_hmc
from pyvi.report import markdown_to_html, write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_markdown_subset(tmp_path):
    (tmp_path / "f.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    text = "# Title\n\nA `code` and **bold** <tag>.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![fig](f.png)\n"
    page = markdown_to_html(text, tmp_path)
    assert "<h1>Title</h1>" in page
    assert "<code>code</code>" in page and "<strong>bold</strong>" in page and "&lt;tag&gt;" in page
    assert "<th>a</th>" in page and "<td>2</td>" in page and "---" not in page
    assert 'src="data:image/png;base64,' in page


def test_missing_figure_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        markdown_to_html("![fig](nope.png)", tmp_path)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (CI installs Debian's chromium)")
def test_page_loads_in_headless_chromium(tmp_path):
    run_hmc(tmp_path, long_chains=2, long_samples=300)
    page = write_html(tmp_path, "test report", (tmp_path / "hmc.md").read_text())
    profile = tmp_path / "profile"
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", out.stdout)
    assert body, out.stdout[:500]
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert "errors" not in attributes, attributes
    assert int(attributes["images"]) == 2
    assert attributes["images-loaded"] == attributes["images"]
