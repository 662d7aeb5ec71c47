"""csrc/core/parallel.hpp: an exception thrown by a loop's item reaches the calling thread (and so
becomes a Python error at the binding) instead of leaving an OpenMP region or a std::thread, which
ends the process (std::terminate). Compiled here, with OpenMP and without (the std::thread pool),
for the fixed-team loop and the elastic one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HEADER = Path(__file__).resolve().parents[1] / "csrc" / "core" / "parallel.hpp"

PROGRAM = r"""
#include <cstdio>
#include <stdexcept>
#include "parallel.hpp"

template <class Loop>
int check(const char* name, Loop loop) {
  try {
    loop(1000, 2, [&](int64_t i) {
      if (i == 3) throw std::runtime_error("item 3 failed");
    });
  } catch (const std::runtime_error& error) {
    std::printf("%s caught: %s\n", name, error.what());
    return 0;
  }
  std::printf("%s: nothing thrown\n", name);
  return 1;
}

int main() {
  int failures = check("parallel_for_all", [](int64_t n, int t, auto body) { pyvi::parallel_for_all(n, t, body); });
  failures += check("parallel_for_elastic_all",
                    [](int64_t n, int t, auto body) { pyvi::parallel_for_elastic_all(n, t, body); });
  return failures;
}
"""


@pytest.mark.skipif(shutil.which("g++") is None or sys.platform != "linux", reason="needs g++ on Linux")
@pytest.mark.parametrize("openmp", [True, False], ids=["openmp", "threads"])
def test_an_item_that_throws_reaches_the_caller(tmp_path, openmp):
    source = tmp_path / "loop.cpp"
    source.write_text(PROGRAM)
    program = tmp_path / "loop"
    flags = ["-fopenmp"] if openmp else []
    subprocess.run(["g++", "-O1", "-std=c++17", "-pthread", *flags, f"-I{HEADER.parent}", str(source), "-o",
                    str(program)], check=True, timeout=300)
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    # (The items after a failure are skipped as soon as the others see it: how many is up to the
    # scheduler, so only the error's arrival is asserted.)
    assert lines == ["parallel_for_all caught: item 3 failed", "parallel_for_elastic_all caught: item 3 failed"], lines
