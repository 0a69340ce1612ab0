"""User-facing text says what and why, not history: no rounds, issue numbers or earlier runs in
the package's docstrings and comments, the packaged configs, README.md or the user docs
(``docs/experiments/`` holds the dated notes, where history is welcome). Links between the docs
resolve."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HISTORY = {
    "a round": re.compile(r"\bround \d|\b(this|previous|last|earlier|next) round\b", re.I),
    "an issue": re.compile(r"\bissues? #?\d", re.I),
    "an issue reference": re.compile(r"(?<![\w/])#\d{1,4}\b"),
    "an earlier run": re.compile(r"\bprevious (round|run|session|version|config)s?\b", re.I),
}


def user_facing() -> list[Path]:
    files = [*ROOT.glob("vidgen/**/*.py"), *ROOT.glob("vidgen/configs/**/*.yaml")]
    files += [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("docs/models/*.md")]
    return sorted(files)


def test_user_facing_text_has_no_history():
    offenders = []
    for path in user_facing():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for what, pattern in HISTORY.items():
                if pattern.search(line):
                    rel = path.relative_to(ROOT)
                    offenders.append(f"{rel}:{number}: {what}: {line.strip()}")
    assert not offenders, "history belongs in docs/experiments/:\n" + "\n".join(offenders)


def test_the_patterns_catch_what_they_should():
    caught = ["round 2 below", "Issue #11", "issue 24", "see #24", "(#10)", "the previous run"]
    missed = ["round(x * 3)", "dmlc/decord#195", "# 2026 notes", "the previous frame"]
    assert all(any(p.search(t) for p in HISTORY.values()) for t in caught)
    assert not any(p.search(t) for p in HISTORY.values() for t in missed)


def test_links_between_docs_resolve():
    broken = []
    for path in [ROOT / "README.md", *ROOT.glob("docs/**/*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" not in target and not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)
