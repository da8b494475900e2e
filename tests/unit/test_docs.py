"""The user-facing documents (README.md and docs/*.md) speak to a user of the project: no paths on a
particular machine, no words about how the project itself was developed, and no broken links or anchors."""
from __future__ import annotations

import re

import pytest

from tests.conftest import PROJECT_ROOT

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]

# absolute paths on a particular machine (a relative path such as `../shared/data` is fine)
MACHINE_PATH = re.compile(r"(?<![\w.~$-])/(?:(?:work|root)\b|home/[\w.-]+|tmp/[\w.*-]+|Users/[\w.-]+|mnt/[a-z]/)")
# the project's own development process
PROCESS = re.compile(r"\bsessions? \d|\bissue ?#?\d|\bthe issue\b|\bcommit [0-9a-f]{7}|\bround \d|\bdevelopment rounds?\b",
                     re.IGNORECASE)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if not fenced and (heading := re.match(r"#{1,6} (.+)", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def _lines(path):
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_no_machine_paths_or_development_history(path):
    found = [f"{path.name}:{n}: {m.group(0)!r}" for n, line in _lines(path)
             for pattern in (MACHINE_PATH, PROCESS) for m in pattern.finditer(line)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_relative_links_resolve(path):
    broken = []
    for n, line in _lines(path):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # a URL
            file, _, anchor = target.partition("#")
            linked = (path.parent / file) if file else path
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
                broken.append(f"{path.name}:{n}: {target}")
    assert not broken, "\n".join(broken)


def test_the_readme_is_a_short_user_guide():
    assert len((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250
