"""The playground's files (loot/http/static/) without a browser: the token constants match the
verifier's, and every resource the pages load comes from their own origin (no other host at run time).
tests/test_playground.py drives them in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loot.tokens.claims import COMPAT_DATES, ISSUER

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "loot" / "http" / "static"
PAGES = [*sorted(STATIC.iterdir()), *sorted((ROOT / "examples" / "browser").glob("*.[hj]*"))]
# Where a page names what it loads: attributes, CSS url(), static and dynamic imports.
REFERENCES = re.compile(r"""(?:\b(?:src|href)=|url\(|\bfrom\s+|\bimport\s*\(\s*)["']?([^"')\s>]+)""")


def test_tokens_js_mints_what_routers_verify() -> None:
    source = (STATIC / "tokens.js").read_text()
    assert f'ISSUER = "{ISSUER}"' in source
    assert f'COMPAT = "{COMPAT_DATES[-1]}"' in source, "update tokens.js to the newest compat date"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_pages_load_nothing_from_another_host(page: Path) -> None:
    references = REFERENCES.findall(page.read_text())
    foreign = [ref for ref in references if re.match(r"[a-z][a-z0-9+.-]*:|//", ref, re.I) and
               not ref.startswith("data:")]
    assert not foreign, f"{page.name} loads {foreign}"


def test_the_reference_pattern_finds_references() -> None:
    found = REFERENCES.findall('<script src="https://cdn.example/x.js"></script> import { a } from "./tokens.js";'
                               ' @import url(//fonts.example/f.css); <a href="/x">')
    assert found == ["https://cdn.example/x.js", "./tokens.js", "//fonts.example/f.css", "/x"]
