"""Headless Chromium for the report tests (participant and group): render an HTML file to a
PNG screenshot and list the local resources it asked for that do not exist, and any
request that left the machine.

Chromium logs every ``file://`` load at ``--v=1`` (``FileURLLoader::Start: <url>``); a
requested file that is not on disk is a missing resource. Network hosts are mapped to
nothing, so a report that needs the network shows it in ``remote``. Debian package
``chromium`` (``.ci/run`` installs it); :func:`require_chromium` skips with the reason
where it is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

__all__ = ["find_chromium", "require_chromium", "render", "Render", "external_resources"]

_FILE_LOAD = re.compile(r"FileURLLoader::Start: (file://\S+)")


@dataclass
class Render:
    png: Path
    requested: list = field(default_factory=list)   # local files the page loaded
    missing: list = field(default_factory=list)     # ... of which do not exist
    remote: list = field(default_factory=list)      # http(s) URLs it tried
    log: str = ""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install -y chromium; "
                    ".ci/run installs it)")
    return path


def render(html_path, png_path, width: int = 1300, height: int = 2400,
           timeout: float = 120) -> Render:
    """Screenshot ``html_path`` into ``png_path`` with headless Chromium."""
    exe = require_chromium()
    html_path = Path(html_path).resolve()
    png_path = Path(png_path).resolve()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=1",
               f"--window-size={width},{height}", f"--screenshot={png_path}",
               html_path.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    requested, missing = [], []
    for url in _FILE_LOAD.findall(log):
        path = Path(unquote(urlparse(url).path))
        if path == html_path or path in requested:
            continue
        requested.append(path)
        if not path.is_file():
            missing.append(path)
    remote = external_resources(html_path.read_text(encoding="utf-8"))
    if not png_path.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {proc.returncode}):\n{log[-3000:]}")
    return Render(png_path, requested, missing, remote, log)


def external_resources(text: str) -> list[str]:
    """Resources a page would fetch from the network: ``src=`` of any element, ``<link>``
    hrefs and CSS ``url()``/``@import`` with an http(s) or protocol-relative URL (plain
    ``<a href>`` links are not loaded and not listed)."""
    found = re.findall(r"""\bsrc\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", text, re.I)
    found += re.findall(r"""<link\b[^>]*\bhref\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", text,
                        re.I)
    found += re.findall(r"""(?:url\(|@import\s+)["']?((?:https?:)?//[^"')\s]+)""", text, re.I)
    return sorted(set(found))
