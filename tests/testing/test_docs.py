"""docs/testing.md runs: its Python blocks, put together in order, are a test file that pytest
runs with the plugin, as a user would; every test in it must pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.DOTALL | re.MULTILINE)


def test_every_python_block_of_the_testing_guide_passes(pytester: pytest.Pytester) -> None:
    code = "\n\n".join(blocks())
    tests = re.findall(r"^def (test_\w+)", code, flags=re.MULTILINE)
    assert len(tests) >= 6 and len(set(tests)) == len(tests)
    pytester.makepyfile(test_from_docs=code)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(tests))


def test_the_readmes_plugin_example_passes(pytester: pytest.Pytester) -> None:
    readme = (DOC.parents[1] / "README.md").read_text()
    (code,) = [b for b in re.findall(r"^```python\n(.*?)^```", readme, flags=re.DOTALL | re.MULTILINE) if "@pytest.mark.cloudconvert" in b]
    pytester.makepyfile(test_readme=code)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=len(re.findall(r"^def test_", code, flags=re.MULTILINE)))
