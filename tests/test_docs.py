"""Every Python block in README.md and docs/ runs as written.

Blocks of one page run in order in one fresh interpreter (a page is one script: later blocks may use
names from earlier ones), in a temporary working directory, so a block that writes files leaves
nothing behind. A block fenced as ```python no-run is shown but not run (say why next to it).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[ \t]*(?P<tag>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)


def python_blocks(text: str) -> list[str]:
    """The runnable ```python blocks of a markdown text, in order."""
    return [m["body"] for m in FENCE.finditer(text) if "no-run" not in m["tag"]]


def test_fence_parser():
    text = ("a\n```python\nx = 1\n```\n```python no-run\nboom()\n```\n"
            "```bash\nls\n```\n```python\ny = x\n```\n")
    assert python_blocks(text) == ["x = 1\n", "y = x\n"]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p.read_text())],
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_page_blocks_run(page, tmp_path):
    blocks = python_blocks(page.read_text())
    script = "\n".join(
        f"# --- block {i + 1} of {page.name}\n"
        f"exec(compile({body!r}, {f'{page.name} block {i + 1}'!r}, 'exec'))" for i, body in enumerate(blocks))
    prelude = ("import matplotlib\nmatplotlib.use('Agg')\nimport torch\ntorch.set_num_threads(1)\n")
    res = subprocess.run([sys.executable, "-c", prelude + script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, f"{page.name}: a block failed\n{res.stderr[-3000:]}"
    assert not (tmp_path / "~").exists(), f"{page.name}: a block created a literal '~' folder"
