"""The HTML report: markdown subset -> HTML with inlined figures, and the whole `pyvi report` page
opened in headless Chromium loads with no script errors and every image decoded."""

import json
import re
import shutil
import subprocess

import pytest

from pyvi.app.cli import main
from pyvi.app.report import markdown_to_html

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


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """`pyvi report` end to end at test sizes (the default run takes ~2 minutes)."""
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--out", str(out), "--steps", "300", "--vae-epochs", "1", "--vae-eval-images", "50",
                 "--no-progress"]) == 0
    return out


def test_report_has_every_section(small_report):
    metrics = json.loads((small_report / "metrics.json").read_text())
    assert set(metrics) >= {"hmc", "flows", "vae", "refine", "bounds", "bench"}
    text = (small_report / "report.md").read_text()
    for heading in ("Problem 3.3", "Problem 3)", "Problem 4", "Problem 1", "Problem 2", "Speed"):
        assert heading in text, heading
    assert set(metrics["flows"]["flows"]) == {"planar", "NICE", "RealNVP"}


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (CI installs Debian's chromium)")
def test_page_loads_in_headless_chromium(small_report, tmp_path):
    page = small_report / "index.html"
    expected_images = len(re.findall(r"^!\[", (small_report / "report.md").read_text(), flags=re.M))
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", out.stdout)
    assert body, out.stdout[:500]
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert "errors" not in attributes, attributes
    assert int(attributes["images"]) == expected_images >= 10
    assert attributes["images-loaded"] == attributes["images"]
