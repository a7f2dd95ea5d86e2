"""nbval checks the outputs of the cells marked `# NBVAL_CHECK_OUTPUT` against the committed ones.

It runs on a copy of each notebook cleared with `nbdev-clean --clear-all`, into which only the marked cells'
committed outputs are put back; cells flagged `slow` or `notest` are dropped, as nbdev-test skips them.
"""
import json, re

import pytest

from conftest import ROOT, run, tool

MARK = "# NBVAL_CHECK_OUTPUT"
SKIP = re.compile(r"^#\|\s*(slow|notest)\s*$", re.M)


def _marked(path):
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code" and MARK in "".join(c["source"])]


NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")) and _marked(p))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_marked_outputs(nb, tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "nbs").mkdir()
    copy = tmp_path / "nbs" / nb.name
    copy.write_text(nb.read_text())
    run([tool("nbdev-clean"), "--clear-all", "--fname", str(copy)], cwd=ROOT)
    original = json.loads(nb.read_text())["cells"]
    cleared = json.loads(copy.read_text())
    kept = []
    for src, dst in zip(original, cleared["cells"], strict=True):
        text = "".join(dst["source"])
        if dst["cell_type"] == "code" and SKIP.search(text):
            continue
        if dst["cell_type"] == "code" and MARK in text:
            # nbval only compares cells that look executed; nbdev-clean drops execution counts
            dst["outputs"], dst["execution_count"] = src["outputs"], 1
        kept.append(dst)
    cleared["cells"] = kept
    copy.write_text(json.dumps(cleared))
    run([tool("python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--nbval-lax",
         str(copy)], cwd=tmp_path / "nbs")
