"""Reports: self-contained HTML with real plots, Markdown with PNGs, banners, spread; one test in Chromium."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess

import pytest
from test_results_builders import write_run, write_trial

from xsched_ops.cli import invoke
from xsched_ops.report import write_report
from xsched_ops.results import finalize_run

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def make_runs(tmp_path, repeats=1, simulated=True, valid=True):
    base = write_run(tmp_path, "run-base", created_wall=1000.0)
    under = write_run(tmp_path, "run-xsched", created_wall=2000.0)
    for repeat in range(repeats):
        write_trial(base, 2 * repeat, "standalone", latency_ms=lambda s, _: 3.0 + s % 5, repeat=repeat,
                    simulated=simulated)
        # FIFO behind a 500 ms batch: a sawtooth of waits
        write_trial(base, 2 * repeat + 1, "baseline", repeat=repeat, simulated=simulated, low_iter_s=1 / 1.97,
                    latency_ms=lambda s, t, r=repeat: 3.0 + (500.0 - (t * 1000.0 + 37 * r) % 500.0))
        write_trial(under, repeat, "xsched", repeat=repeat, simulated=simulated, low_iter_s=1 / 1.75,
                    latency_ms=lambda s, _, r=repeat: 3.0 + (s * 7 + r) % 40,
                    shim=None if valid else {"high": True, "low": False})
    return finalize_run(base), finalize_run(under)


def png_has_varied_pixels(png: bytes) -> bool:
    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    return pixels.shape[0] > 50 and pixels.shape[1] > 50 and float(pixels[..., :3].std()) > 0.01


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_html_is_self_contained_with_real_plots(tmp_path):
    runs = make_runs(tmp_path)
    out = write_report(list(runs), tmp_path / "report.html")
    page = out.read_text()
    assert "SUMMARY: high priority latency" in page
    assert 'id="simulated-banner"' in page
    assert "COMPARISON: XSched vs Baseline (intensive)" in page and "-11.2%" in page
    pngs = embedded_pngs(page)
    assert len(pngs) == 4
    assert all(png.startswith(b"\x89PNG") and png_has_varied_pixels(png) for png in pngs)
    # nothing is fetched from anywhere: no external src/href
    assert not re.search(r'(src|href)="(https?:)?//', page)
    for section in ("Validity and sample counts", "Environment of each role", "Doctor summary", "Target facts",
                    "Spread across repeats"):
        assert section in page
    assert "XSCHED_SCHEDULER=GLB" in page and "/opt/xsched/lib/libshimhip.so" in page


def test_no_banner_for_gpu_runs(tmp_path):
    page = write_report(list(make_runs(tmp_path, simulated=False)), tmp_path / "r.html").read_text()
    assert "simulated-banner" not in page


def test_repeats_show_the_spread(tmp_path):
    page = write_report(list(make_runs(tmp_path, repeats=3)), tmp_path / "r.html").read_text()
    assert "(n=3)" in page
    assert "3/3" in page  # valid repeats per mode
    assert "t-interval" in page and "±" in page


def test_invalid_run_report_says_why(tmp_path):
    runs = make_runs(tmp_path, valid=False)
    page = write_report(list(runs), tmp_path / "r.html").read_text()
    assert "No verdict" in page and "doctor" in page and "INVALID" in page


def test_markdown_with_pngs_beside(tmp_path):
    runs = make_runs(tmp_path)
    out = write_report(list(runs), tmp_path / "md" / "report.md", fmt="md")
    text = out.read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) == 4
    for name in images:
        png = (out.parent / name).read_bytes()
        assert png_has_varied_pixels(png)
    assert "SIMULATED" in text and "SUMMARY:" in text


def test_report_cli(tmp_path, capsys):
    make_runs(tmp_path)
    out = tmp_path / "cli.html"
    assert invoke(["report", "run-base", "run-xsched", "--results-dir", str(tmp_path), "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert invoke(["report", "run-base", "--results-dir", str(tmp_path), "--format", "pdf"]) == 2
    # default location: in the first run's folder
    assert invoke(["report", "run-base", "run-xsched", "--results-dir", str(tmp_path)]) == 0
    assert (tmp_path / "run-base" / "report.html").is_file()


_CHECK_SCRIPT = """
<script>
window.addEventListener('load', () => {
  const images = [...document.images].map(img => {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    let colors = -1;
    try {
      const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
      const seen = new Set();
      for (let i = 0; i < data.length; i += 4 * 31) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      colors = seen.size;
    } catch (error) { colors = -2; }
    return {id: img.id, width: img.naturalWidth, height: img.naturalHeight, colors: colors};
  });
  const verdict = document.getElementById('verdict');
  const out = document.createElement('pre');
  out.id = 'check-result';
  out.textContent = JSON.stringify({images: images, verdict: verdict ? verdict.textContent : null});
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_report_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        if IN_CI:
            pytest.fail("chromium is missing; CI installs it (make setup)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    runs = make_runs(tmp_path, repeats=2)
    page = write_report(list(runs), tmp_path / "report.html").read_text()
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", _CHECK_SCRIPT + "</body>"))
    completed = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
         checked.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    match = re.search(r'<pre id="check-result">(.*?)</pre>', completed.stdout, re.S)
    assert match, f"no check result in the page (rc {completed.returncode}): {completed.stderr[-2000:]}"
    result = json.loads(html.unescape(match.group(1)))
    assert result["verdict"] and result["verdict"].startswith("SUMMARY: high priority latency")
    assert len(result["images"]) == 4
    for image in result["images"]:
        assert image["width"] > 100 and image["height"] > 100, image
        assert image["colors"] > 5, f"plot {image['id']} looks blank: {image}"
