"""Headless Chromium for the report tests: a screenshot, and the page's resources that did
not load (read back from the page itself: a copy of the page with a small script that lists
every image, stylesheet and script that failed, put in the page title and read from
``--dump-dom``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

CHECK = """<script>
window.addEventListener('load', function () {
  var bad = [];
  document.querySelectorAll('img').forEach(function (i) {
    if (!i.complete || i.naturalWidth === 0) bad.push(i.getAttribute('src')); });
  document.querySelectorAll('link[rel=stylesheet]').forEach(function (l) {
    if (!l.sheet) bad.push(l.getAttribute('href')); });
  document.title = 'QSMPREP-CHECK ' + JSON.stringify(bad);
});
</script>"""


def chromium() -> str | None:
    """The Chromium executable, or None when it is not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(exe, *args, timeout=120):
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--allow-file-access-from-files",
                           "--virtual-time-budget=5000", *args],
                          capture_output=True, text=True, timeout=timeout)


def missing_resources(page: Path) -> list:
    """Resources of ``page`` that Chromium could not load (a copy with :data:`CHECK` is
    written beside it, so relative links resolve the same, and removed afterwards)."""
    exe = chromium()
    page = Path(page)
    probe = page.with_name(f".check-{page.name}")
    probe.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    try:
        out = _run(exe, "--dump-dom", probe.resolve().as_uri()).stdout
    finally:
        probe.unlink()
    m = re.search(r"<title>QSMPREP-CHECK (.*?)</title>", out)
    if not m:
        raise AssertionError(f"Chromium did not run the check on {page}:\n{out[:2000]}")
    import html

    return json.loads(html.unescape(m.group(1)))


def screenshot(page: Path, png: Path, size=(1200, 2400)) -> Path:
    """A PNG of ``page`` rendered by headless Chromium."""
    _run(chromium(), f"--screenshot={png}", f"--window-size={size[0]},{size[1]}",
         Path(page).resolve().as_uri())
    if not png.is_file() or png.stat().st_size < 1000:
        raise AssertionError(f"Chromium wrote no screenshot of {page}")
    return png
