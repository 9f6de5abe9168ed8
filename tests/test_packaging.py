"""What PyPI shows and what the sdist carries: Project-URLs, classifiers, absolute links in
the README (relative ones are dead on PyPI), and docs/ and the fixtures that the tests read."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel, built from a copy of the tree: a build in place rewrites
    src/apidriver.egg-info, which the editable install's path exposes to other tests."""
    tree = tmp_path_factory.mktemp("tree") / "apidriver"
    shutil.copytree(
        ROOT, tree, ignore=shutil.ignore_patterns(".venv*", "build", "dist", "*.egg-info", ".git", "__pycache__", ".*_cache")
    )
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(tree)],
        check=True, capture_output=True, timeout=300,
    )
    return out


def test_wheel_metadata_has_urls_classifiers_and_absolute_links(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    classifiers = metadata.get_all("Classifier")
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert "Programming Language :: Python :: 3.11" in classifiers
    readme = metadata.get_payload()
    links = re.findall(r"\]\(([^)]+)\)", readme)
    assert links and [link for link in links if not link.startswith(("https://", "#"))] == []
    assert all(link.startswith(urls["Source"]) for link in links if "docs/" in link)


def test_sdist_carries_the_docs_and_fixtures_the_tests_read(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"docs/sqlalchemy.md", "docs/tables.md", "README.md", "LICENSE", "tests/conftest.py"} <= names
    assert any(n.startswith("tests/fixtures/cloudconvert/") and n.endswith(".json") for n in names)
    assert not any("__pycache__" in n or n.startswith(".venv") for n in names)
