"""`pip install -e .` with the pip that a fresh venv of Python 3.11 brings (no upgrade),
then `import vedika.app` (issue 13, item 6: lxml 6.1 dropped the `html_clean` extra
that jusText asks for, and an older pip did not install `lxml_html_clean`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_installs_with_the_stock_pip(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "--version"], check=True, capture_output=True, text=True
    )
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    imported = subprocess.run(
        [str(python), "-c", "import vedika.app, lxml.html.clean; print('ok')"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.stdout.strip() == "ok", f"{pip.stdout}\n{imported.stderr[-2000:]}"
