"""docs/testing.md runs: its Python blocks, put together in order, are a test file that pytest runs
with the plugin, as a user would; every test in it must pass."""

from __future__ import annotations

from pathlib import Path

from .harness import DocRun

DOC = "docs/testing.md"


def test_every_block_of_the_testing_guide_passes(tmp_path: Path) -> None:
    with DocRun(DOC, None, tmp_path) as run:
        run.run()
    (tests,) = run.ran  # one test file of every block
    assert len(tests.value) >= 6 and len(run.outcomes) >= 5
