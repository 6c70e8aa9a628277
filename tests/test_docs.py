"""The docs hold: generated blocks match the committed results, no block went missing, every relative link resolves."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

_spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
gen_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_docs)

PAGES = gen_docs.doc_files()
# Where each generated block must stay: --check cannot see a block whose markers were deleted.
BLOCK_PAGES = {
    "README.md": ("headline", "quickstart-time"),
    "docs/results.md": ("table",),
    "docs/cpu-reproduction.md": ("cpu-repro-table", "cpu-repro-tuning", "claims", "cpu-repro-ablations", "cpu-repro-findings"),
    "docs/reproducing.md": ("paper-tables", "paper-grids"),
    "docs/size-sweeps.md": ("size-sweep", "size-sweep-findings"),
    "docs/architectures.md": ("architectures",),
    "config/README.md": ("config-keys",),
    "docs/running.md": ("resources",),
    "docs/benchmarks.md": (
        "budget",
        "loop-overhead",
        "eval-paths",
        "student-speed",
        "paper-job",
        "train-options",
        "dag-schedule",
        "dry-run",
        "slurm-overhead",
    ),
}
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
README_LIMIT = 10_000


def test_generated_blocks_match_the_committed_results() -> None:
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, f"stale generated docs (run scripts/gen_docs.py): {check.stderr}{check.stdout}"


def test_the_check_fails_on_a_stale_block() -> None:
    stale = "<!-- table:begin -->\nold numbers\n<!-- table:end -->\n"
    assert gen_docs.render(stale) != stale and "old numbers" not in gen_docs.render(stale)
    empty = "<!-- budget:begin -->\n<!-- budget:end -->\n"
    assert "dag_budget.json" in gen_docs.render(empty)


def test_every_block_is_where_it_belongs() -> None:
    assert set(gen_docs.BLOCKS) == {name for names in BLOCK_PAGES.values() for name in names}
    for page, names in BLOCK_PAGES.items():
        text = (REPO / page).read_text()
        for name in names:
            assert f"<!-- {name}:begin -->" in text and f"<!-- {name}:end -->" in text, f"{page} lost its generated block {name!r}"


def test_the_readme_stays_short() -> None:
    size = len((REPO / "README.md").read_text())
    assert size <= README_LIMIT, f"README.md is {size} characters, over {README_LIMIT}: move detail to a docs/ page"


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def relative_links(page: Path) -> list[str]:
    """The relative link targets of a page, outside code (a link's text may be code: [`x`](x) keeps its target)."""
    text = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(f"{target} (no such file in the repository)")
        elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved.read_text()):
            broken.append(f"{target} (no heading #{anchor} in {resolved.relative_to(REPO)})")
    assert not broken, f"{page.relative_to(REPO)}: broken links: {', '.join(broken)}"


def test_the_link_check_finds_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[`ok`](page.md) [gone](missing.md) [web](https://example.org) `[code](x.md)`\n```\n[block](y.md)\n```\n")
    assert relative_links(page) == ["page.md", "missing.md"]
    assert heading_anchors("# The DAG's budget\n```\n# not a heading\n```\n## Training switches: amp, channels_last\n") == {
        "the-dags-budget",
        "training-switches-amp-channels_last",
    }
