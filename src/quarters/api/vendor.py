"""``/vendor``: only the library files the pages load, not all of ``node_modules``.

The allow-list is built once from the ``/vendor/…`` references in ``web/*.html`` (script and link
tags), the library list of the page chrome (``web/templates/chrome.html``) and the ``url(…)``
references inside those style sheets (Leaflet's images).
Anything else under ``node_modules`` (package.json, READMEs, sources) answers 404.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import Scope

TAG_REF = re.compile(
    r"""<(?:script|link)\b[^>]*?(?:src|href)\s*=\s*["'](?:\.?/)?vendor/([^"'?#]+)""", re.I)
# the chrome template names the libraries as strings: ("leaflet", "/vendor/leaflet/…")
TEMPLATE_REF = re.compile(r"""["']/vendor/([^"'?#]+)["']""")
IMAGES = (".png", ".svg", ".gif", ".jpg", ".webp")
CSS_URL = re.compile(r"""url\(\s*["']?([^"')?#]+)""")


def vendor_files(web_dir: Path) -> frozenset[str]:
    """Paths below node_modules that the pages load (relative, POSIX)."""
    vendor = web_dir / "node_modules"
    files: set[str] = set()
    for page in sorted(web_dir.glob("*.html")):
        files.update(TAG_REF.findall(page.read_text(encoding="utf-8")))
    for template in sorted(web_dir.glob("templates/*.html")):
        files.update(TEMPLATE_REF.findall(template.read_text(encoding="utf-8")))
    for css in [f for f in files if f.endswith(".css")]:
        path = vendor / css
        if not path.is_file():
            continue
        for ref in CSS_URL.findall(path.read_text(encoding="utf-8", errors="replace")):
            if ref.startswith(("data:", "http:", "https:", "/")):
                continue
            joined = PurePosixPath(css).parent / ref
            parts: list[str] = []
            for part in joined.parts:
                if part == "..":
                    if parts:
                        parts.pop()
                elif part != ".":
                    parts.append(part)
            files.add("/".join(parts))
            # the scripts load sibling images the sheet does not name (marker-shadow.png)
            folder = vendor.joinpath(*parts[:-1])
            files.update(f"{'/'.join(parts[:-1])}/{img.name}" for img in folder.glob("*")
                         if img.suffix.lower() in IMAGES and img.is_file())
    return frozenset(f for f in files if (vendor / f).is_file())


class VendorFiles(StaticFiles):
    """StaticFiles over node_modules that serves only the allow-listed files."""

    def __init__(self, web_dir: Path) -> None:
        super().__init__(directory=web_dir / "node_modules")
        self.allowed = vendor_files(web_dir)

    def get_path(self, scope: Scope) -> str:
        """The requested path, or 404 when the pages do not load it."""
        path = super().get_path(scope)
        if PurePosixPath(path.replace("\\", "/")).as_posix() not in self.allowed:
            raise HTTPException(status_code=404)
        return path
