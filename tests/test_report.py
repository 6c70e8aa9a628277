"""`snakemake --report` on the shared test-grid run: one HTML file that holds the tables, the claims and
the plots byte for byte, each with its caption from workflow/report/, and that renders with no network."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

# Each caption of workflow/report/ and the outputs (relative to the run's directory) it describes.
CAPTIONS = {
    "summary": ["results/tables/digits.md", "results/tables/digits.csv", "results/tables/digits.tex"],
    "claims": ["results/tables/digits_claims.md", "results/tables/digits_claims.csv"],
    "fid_vs_params": ["results/plots/digits_fid_vs_params.png", "results/plots/digits_fid_vs_params.csv"],
    "samples": ["results/plots/digits_samples.png"],
}


@pytest.fixture(scope="module")
def report(test_grid_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the finished test-grid run (its .snakemake metadata), written outside the run's directory."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = subprocess.run([sys.executable, "-m", "snakemake", "--report", str(out)], cwd=test_grid_run, capture_output=True, text=True)
    assert result.returncode == 0, f"snakemake --report failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return out


def embedded(report_html: str, script_id: str) -> object:
    """The JSON value the report's script ``script_id`` holds (`<script id="results"> var results = {...};`)."""
    match = re.search(rf'<script id="{script_id}">\s*var \w+ = (.*?);\n\s*</script>', report_html, re.S)
    assert match, f"no script {script_id} in the report"
    return json.loads(match.group(1))


def plain_text(fragment: str) -> str:
    """Rendered HTML as a reader sees it: no tags, entities decoded, whitespace runs as one space."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def static_lines(caption: Path) -> list[str]:
    """The caption's lines that render as they are written: no templating, inline markup, link, directive or title rule."""
    lines = [line.strip() for line in caption.read_text().splitlines()]
    return [" ".join(line.split()) for line in lines if line and not re.search(r"\{[{%]|\*|``|\w_\b|^\.\.|^:|^=+$", line)]


def test_the_report_embeds_every_table_and_plot_byte_for_byte(report: Path, test_grid_run: Path):
    results = embedded(report.read_text(), "results")
    assert sorted(results) == sorted(path for paths in CAPTIONS.values() for path in paths)
    for path, result in results.items():
        data_uri = result["data_uri"]
        assert data_uri.startswith("data:"), f"{path} is linked, not embedded: {data_uri[:80]}"
        assert base64.b64decode(data_uri.split("base64,", 1)[1]) == (test_grid_run / path).read_bytes()


def test_each_result_carries_its_caption_with_the_tables_in_it(report: Path, test_grid_run: Path):
    results = embedded(report.read_text(), "results")
    for name, paths in CAPTIONS.items():
        lines = static_lines(REPO / "workflow" / "report" / f"{name}.rst")
        assert len(lines) >= 3, f"{name}.rst has too little plain text to check"
        for path in paths:
            shown = plain_text(results[path]["caption"])
            assert [line for line in lines if line not in shown] == [], f"{path}: caption {name}.rst not rendered"
    summary = html.unescape(results["results/tables/digits.csv"]["caption"])
    for row in pd.read_csv(test_grid_run / "results" / "tables" / "digits.csv").itertuples():
        shown_row = next(line for line in summary.splitlines() if line.startswith(f"| {row.row} "))
        assert f"{row.fid:.2f}" in shown_row  # the table shown is this run's, mean FID as the Markdown rounds it
    claims = html.unescape(results["results/tables/digits_claims.md"]["caption"])
    markdown = (test_grid_run / "results" / "tables" / "digits_claims.md").read_text()
    assert [line for line in markdown.splitlines() if line.startswith("|") and line not in claims] == []


def test_the_workflow_description_names_this_grid(report: Path, test_grid_run: Path):
    description = plain_text(embedded(report.read_text(), "workflow-desc"))
    config = yaml.safe_load((test_grid_run / "config" / "config.yaml").read_text())
    assert f"AKDG reproduction on {config['dataset']['name']}" in description
    assert f"seeds {', '.join(map(str, config['seeds']))};" in description
    assert f"methods {', '.join(config['methods'])};" in description
    lines = static_lines(REPO / "workflow" / "report" / "workflow.rst")
    assert [line for line in lines if line not in description] == []


def test_the_report_renders_offline_with_the_tables_shown(report: Path, tmp_path: Path):
    """Chromium, every network request refused, opens the report and the summary table's description."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page, _, end = report.read_text().rpartition("</body>")
    opened = tmp_path / "opened.html"  # the report, and a click on the summary table's info button once React has drawn the page
    opened.write_text(page + "<script>setTimeout(() => app.showResultInfo('results/tables/digits.md'), 300);</script></body>" + end)
    offline = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        *offline,
        "--virtual-time-budget=10000",
        "--dump-dom",
        opened.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    assert '<h1 class="title">AKDG reproduction on digits</h1>' in dom  # React ran and rendered the description
    assert "Teacher (sngan)" in html.unescape(dom)
    assert re.search(r'<pre class="literal-block">\s*# digits\s', dom), "the summary table is not on the page"
