"""The benchmarks: bench/run.py end to end (shortened), and the per-kind preprocessing tables it reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import preprocess_bench, run
from training.markdown import markers
from training.upload_styles import GROUPS

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "digit.png"


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """Two MNIST-like digits (28x28 uint8, white on black) made from the sample drawing, so no MNIST download is needed."""
    seven = 255 - np.asarray(Image.open(SAMPLE).convert("L").resize((28, 28), Image.Resampling.BOX))
    return np.stack([seven, np.fliplr(seven)])


def test_per_kind_table_has_every_kind_of_every_group(digits):
    results = preprocess_bench.measure_kinds(digits, per_kind=1, times_each=1)
    kinds = [kind for styles in GROUPS.values() for kind in styles] + list(preprocess_bench.IMAGES)
    assert list(results["kinds"]) == kinds
    assert list(results["groups"]) == [*GROUPS, preprocess_bench.BENCH_GROUP]
    for row in results["kinds"].values():
        figures = row[preprocess_bench.THIS]
        assert figures["timings"] == 1 and figures["images"] == 1
        assert 0 < figures["decode_p50"] <= figures["total_p50"] and figures["total_p50"] <= figures["total_p99"]
    table = preprocess_bench.kinds_report(results)
    # A header, its rule, a row per kind and a pooled row per rendered group.
    assert len(table.splitlines()) == 2 + len(kinds) + len(GROUPS)
    assert "| photos | **all photos** |" in table and "| bench | 2000x2000 JPEG | 1 |" in table
    json.dumps(results)  # run.py writes it to results.json


def test_compare_mode_times_the_same_images_through_both_checkouts(digits):
    groups = {"uploads": {"clean_png": GROUPS["uploads"]["clean_png"]}, "photos": {"paper_on_desk": GROUPS["photos"]["paper_on_desk"]}}
    results = preprocess_bench.measure_kinds(digits, per_kind=2, times_each=2, compare_with=ROOT, groups=groups)
    assert results["compared_with"] == ROOT.name
    for row in results["kinds"].values():
        assert row[preprocess_bench.COMPARED]["timings"] == row[preprocess_bench.THIS]["timings"] == 4
    text = preprocess_bench.kinds_markdown(results, "a test machine", "python bench/preprocess_bench.py")
    comparison = preprocess_bench.comparison_report(results)
    assert comparison in text and "| uploads | clean_png | 0 / 0 |" in comparison


def test_compare_mode_names_a_folder_that_is_not_a_checkout(tmp_path):
    with pytest.raises(FileNotFoundError, match="root folder of a checkout"):
        preprocess_bench.load_preprocess(tmp_path)


def test_run_reports_the_per_kind_tables_in_bench_only(tmp_path, digits, monkeypatch):
    assert run.measure_kinds(None, 1) is None
    assert run.measure_kinds(str(tmp_path / "missing.npz"), 1) is None
    data = tmp_path / "mnist.npz"
    np.savez(data, x_train=digits, y_train=np.array([7, 7]), x_test=digits, y_test=np.array([7, 7]))
    monkeypatch.setattr(preprocess_bench, "GROUPS", {"photos": {"sticky_note": GROUPS["photos"]["sticky_note"]}})
    by_kind = run.measure_kinds(str(data), 1)
    assert list(by_kind["kinds"]) == ["sticky_note", *preprocess_bench.IMAGES]
    kinds_text = preprocess_bench.kinds_markdown(by_kind, "a test machine", "python bench/run.py")
    sections = {name: "\n".join(markers(name)) for name in (run.README_SECTION, preprocess_bench.README_SECTION)}
    (tmp_path / "README.md").write_text(f"# bench\n{sections['benchmark']}\n## per kind\n{sections['preprocessing']}\n")
    project_readme = tmp_path / "PROJECT.md"
    project_readme.write_text(f"# project\n{sections['benchmark']}\n")
    run.write_reports(tmp_path, project_readme, "SERVING TABLES\n", kinds_text)
    bench_readme = (tmp_path / "README.md").read_text()
    assert "SERVING TABLES" in bench_readme and "| photos | **all photos** |" in bench_readme
    assert "SERVING TABLES" in project_readme.read_text() and "all photos" not in project_readme.read_text()
    assert "## Preprocessing per kind of image" in (tmp_path / "RESULTS.md").read_text()


@pytest.mark.slow
def test_benchmark_runs_every_server_and_reports_the_targets(tmp_path):
    assert shutil.which("wrk"), "wrk is needed by the benchmark (apt-get install wrk)"
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- benchmark:start -->\nSTALE SECTION\n<!-- benchmark:end -->\n")
    command = [sys.executable, "bench/run.py", "--seconds", "1", "--per-kind", "2", "--out", str(tmp_path), "--readme", str(readme)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "results.json").read_text())
    names = [server["name"] for server in report["servers"]]
    assert names[:3] == ["tutorial way", "bare ceiling", "digitserve"]
    for server in report["servers"]:
        assert server["cold_start_s"] > 0 and server["rss_mb"] > 0
        for run_cell in server["runs"]:
            # In one-second cells the tutorial way may not finish a request; the others must.
            if server["name"] != "tutorial way":
                assert run_cell["requests"] > 0, f"{server['name']} answered nothing on {run_cell['image']} at {run_cell['clients']} clients"
            if server["name"].startswith("digitserve"):
                assert run_cell["errors"] == 0, f"{server['name']} had errors on {run_cell['image']} at {run_cell['clients']} clients"
    pairs = report["paired"]["pairs"]
    assert len(pairs) == run.PAIRS and all({"tutorial", "ceiling", "digitserve"} <= set(pair) for pair in pairs)
    assert set(report["preprocessing"]) == {"28x28 PNG", "280x280 PNG", "2000x2000 JPEG"}
    if os.environ.get("DIGITSERVE_MNIST"):
        assert set(report["preprocessing_by_kind"]["groups"]) == {*GROUPS, "bench"}
    text = readme.read_text()
    assert "STALE SECTION" not in text and "| target | measured | met |" in text and "throughput vs tutorial way" in text
