"""training/compare.py: trains, measures and reports; an interrupted comparison resumes."""

from __future__ import annotations

import json

import pytest

from training import compare
from training.markdown import markers


@pytest.mark.slow
def test_quick_comparison_writes_table_plot_and_readme(tmp_path, mnist, capsys):
    readme = tmp_path / "README.md"
    start, end = markers(compare.README_SECTION)
    readme.write_text(f"intro\n{start}\nstale\n{end}\nrest\n")
    data = mnist.source if mnist.source != "keras.datasets.mnist" else ""
    arguments = ["--quick", "--only", "softmax", "--per-style", "2", "--data", data]
    arguments += ["--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs"), "--readme", str(readme)]
    assert compare.main(arguments) == 0
    rows = json.loads((tmp_path / "out" / "comparison.json").read_text())["rows"]
    assert [(row["arch"], row["recipe"]) for row in rows] == [("softmax", "tutorial"), ("softmax", "project")]
    for row in rows:
        assert row["parameters"] == 7850 and row["file_bytes"] > 0 and row["seconds_per_epoch"] > 0
        assert 0 < row["test_accuracy"] <= 1 and 0 <= row["upload_accuracy"] <= 1
        assert row["latency_batch1_ms"] > 0 and row["latency_batch64_ms"] > 0
        assert len(row["test_accuracy_per_epoch"]) == row["epochs"] == 1
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 10_000
    text = readme.read_text()
    assert "stale" not in text and "| softmax | tutorial | 7,850 |" in text and text.endswith("rest\n")

    capsys.readouterr()
    assert compare.main(arguments) == 0
    assert capsys.readouterr().out.count("reusing the finished run") == 2
