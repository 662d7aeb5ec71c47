"""The README's Python code blocks run as written, each in a fresh interpreter, so the docs cannot rot.

Each ```python block runs alone (with only what it imports and defines), in a temporary folder
(anything it writes lands there), under a time limit: the blocks are meant to take seconds.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
BLOCKS = BLOCK.findall(README.read_text(encoding="utf-8"))
TIME_LIMIT_S = 300  # a hang guard: each block takes seconds


def test_readme_has_python_blocks():
    assert BLOCKS, f"no ```python block in {README}"


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{index}" for index in range(len(BLOCKS))])
def test_readme_python_block_runs(code, tmp_path):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         timeout=TIME_LIMIT_S)
    assert out.returncode == 0, f"README block failed:\n{code}\n--- stderr:\n{out.stderr[-3000:]}"
