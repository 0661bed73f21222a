"""No text users read cites a file they do not have: the project's private specification or the
maintainers' shared folder. What messages point to instead (docs/quality.md) must exist."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

from astrocal_widgets.quality.checks import check_frames

ROOT = Path(__file__).resolve().parents[1]
#: Everything a user of the package or of the repository reads.
SHIPPED = ["astrocal_widgets", "docs", "notebooks", "binder", "benchmarks", "tests", "README.md"]
PRIVATE = re.compile(r"ALGORITHMS\.md|ALGORITHMS md|\.\./shared/|shared/(?:ALGORITHMS|TESTING-WIDGETS|ROADMAP)")


def _texts():
    for entry in SHIPPED:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            if f.suffix not in (".py", ".md", ".ipynb", ".txt", ".toml", ".cfg", ".yml", ".yaml", ".json", ".html"):
                continue
            if f.resolve() == Path(__file__).resolve():
                continue
            yield f, f.read_text(encoding="utf-8", errors="replace")


def test_no_file_cites_the_private_specification_or_shared_folder():
    hits = [f"{f.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0)}"
            for f, text in _texts() for m in PRIVATE.finditer(text)]
    assert not hits, "\n".join(hits)
    assert sum(1 for _ in _texts()) > 50  # the walk really read the package, docs and tests


def test_messages_point_to_a_docs_page_that_exists():
    cube = xr.DataArray(np.full((3, 16, 16), 500.0, np.float32), dims=("frame", "y", "x"))
    report = check_frames(cube, kind="bias")
    count = report.one("frame_count")
    assert count.status == "fail" and "How many frames in docs/quality.md" in count.explanation
    assert "ALGORITHMS" not in report.summary()
    quality = (ROOT / "docs" / "quality.md").read_text(encoding="utf-8")
    assert "\n## How many frames\n" in quality
    for words in ("bias | 50-100", "darks | 20-50", "flats | about 20", "dark flats | as many as the flats"):
        assert words in quality
