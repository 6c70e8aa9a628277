"""Generated docs are never stale: every block scripts/gen_docs.py renders matches the committed results."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_generated_blocks_match_the_committed_results() -> None:
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, f"stale generated docs (run scripts/gen_docs.py): {check.stderr}{check.stdout}"


def test_the_check_fails_on_a_stale_block(tmp_path) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gen_docs
    finally:
        sys.path.pop(0)
    stale = "<!-- table:begin -->\nold numbers\n<!-- table:end -->\n"
    assert gen_docs.render(stale) != stale and "old numbers" not in gen_docs.render(stale)
