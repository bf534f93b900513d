"""Contamination on planted duplicates: the Python stdlib corpus plus a corpus
holding exact copies of some HumanEval entries (planted), copies with one
character changed (edited); every other entry is absent."""

from __future__ import annotations

import csv
import json
import os

import pytest

import infinigram
from infinigram.analysis import contamination_scores, write_report
from infinigram.cli import main

from conftest import CODE, DATA_DIR, write_jsonl

HUMANEVAL = os.path.join(DATA_DIR, "humaneval.jsonl")
PLANTED = [3, 17, 42, 99, 120, 151]
EDITED = [5, 60, 130]
FIELDS = ["prompt", "canonical_solution"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if not (os.path.exists(CODE) and os.path.exists(HUMANEVAL)):
        pytest.fail(f"real corpora not found in {DATA_DIR} (the shared test corpora are required: shared/data beside the repository, or set INFINIGRAM_TEST_DATA)", pytrace=False)
    d = tmp_path_factory.mktemp("contam")
    he = [json.loads(l) for l in open(HUMANEVAL, encoding="utf-8")]
    recs = []
    for k in PLANTED:  # as it might appear in training data: inside a file with other text
        recs.append({"text": f"# solutions.py\nimport math\n\n{he[k]['prompt']}{he[k]['canonical_solution']}\n\n"
                             f"if __name__ == '__main__':\n    pass\n", "src": f"planted-{k}"})
    for k in EDITED:  # one character changed in the middle
        t = he[k]["prompt"] + he[k]["canonical_solution"]
        mid = len(t) // 2
        recs.append({"text": t[:mid] + ("#" if t[mid] != "#" else "%") + t[mid + 1:], "src": f"edited-{k}"})
    planted = write_jsonl(str(d / "planted.jsonl"), recs)
    out = str(d / "idx")
    infinigram.build([CODE, planted], out, progress=False, shard_size="3MB")
    idx = infinigram.Index(out)
    assert idx.n_shards >= 2
    return idx, he, d


@pytest.mark.parametrize("method", ["windows", "coverage"])
def test_planted_exactly_dirty(setup, method):
    idx, he, _ = setup
    res = contamination_scores(idx, {"humaneval": he}, FIELDS, method=method)
    by = {e.entry: e for e in res.entries}
    assert len(by) == len(he)
    dirty = {k for k, e in by.items() if e.status == "dirty"}
    assert set(PLANTED) <= dirty <= set(PLANTED) | set(EDITED)
    for k in PLANTED:
        assert by[k].overlap == 1.0
    for k in EDITED:
        assert 0.2 <= by[k].overlap < 1.0 and by[k].status in ("dirty", "suspicious")
    for k, e in by.items():
        if k not in PLANTED and k not in EDITED:
            assert e.status == "clean", (k, e.overlap)
    s = res.summary["humaneval"]
    assert s["entries"] == len(he) and s["dirty"] == len(dirty)
    # worst entries carry their spans and the planted source document
    for k in PLANTED:
        srcs = {src["metadata"].get("src") for sp in by[k].spans for src in sp["sources"]}
        assert f"planted-{k}" in srcs


def test_report_files_and_cli(setup, capsys):
    idx, he, d = setup
    bench = write_jsonl(str(d / "he.jsonl"), he[:60])
    prefix = str(d / "rep" / "humaneval")
    rc = main(["contamination", idx.path, bench, "--fields", ",".join(FIELDS), "-o", prefix, "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "he" in out and "dirty" in out and "entries/min" in out
    js = json.load(open(prefix + ".json"))
    assert js["method"] == "windows" and js["n"] == 50
    dirty_ids = {e["id"] for e in js["entries"] if e["status"] == "dirty"}
    assert {f"HumanEval/{k}" for k in PLANTED if k < 60} <= dirty_ids
    rows = list(csv.DictReader(open(prefix + ".csv")))
    assert len(rows) == 60
    page = open(prefix + ".html", encoding="utf-8").read()
    assert "HumanEval/3" in page and "<svg" in page and "planted-3" in page
    # missing field: a clear error naming the file and line
    rc = main(["contamination", idx.path, bench, "--fields", "question", "-o", prefix, "--no-progress"])
    assert rc == 2
    assert "he.jsonl:1: missing field(s) question" in capsys.readouterr().err


def test_mia_cli(tmp_path, capsys):
    recs = [{"text": "the cat sat on the mat and looked out of the window", "label": 1,
             "generations": ["the cat sat on the mat and looked", "a cat sat on the mat"]},
            {"text": "stocks fell sharply on monday after the report", "label": 0,
             "generations": ["the weather was nice today", "stocks rose on tuesday"]}]
    src = write_jsonl(str(tmp_path / "c.jsonl"), recs)
    out = str(tmp_path / "s.jsonl")
    assert main(["mia", src, "-o", out, "--unit", "regex", "--no-progress"]) == 0
    txt = capsys.readouterr().out
    assert "AUROC" in txt and "Max_coverages_gen_length" in txt
    rows = [json.loads(l) for l in open(out)]
    assert rows[0]["Max_coverages_gen_length"] == 1.0 and rows[1]["Max_coverages_gen_length"] == 0.0
