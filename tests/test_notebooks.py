"""Every notebook runs top to bottom as under nbdev-test, once, and the cells marked `# NBVAL_CHECK_OUTPUT` print
what the committed notebook shows.

Each notebook runs in its own process (`run_notebook.py`: nbdev's `test_nb`, so cells flagged `slow` or `notest`
are skipped as nbdev-test skips them). The marked cells are then compared as `nbval --nbval-lax` compares them:
the text of their streams and of their results, not images.
"""
import json

import pytest

from conftest import ROOT, run, tool

MARK = "# NBVAL_CHECK_OUTPUT"
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")))


def _text(outputs: list[dict]) -> list[tuple[str, str]]:
    "A cell's outputs as (kind, text): consecutive stream chunks joined, results by their text/plain."
    out = []
    for o in outputs:
        kind = o["output_type"]
        if kind == "stream":
            text = "".join(o["text"])
            if out and out[-1][0] == o["name"]:
                out[-1] = (o["name"], out[-1][1] + text)
            else:
                out.append((o["name"], text))
        elif kind in ("execute_result", "display_data"):
            out.append((kind, "".join(o.get("data", {}).get("text/plain", ""))))
        elif kind == "error":
            out.append(("error", o["ename"]))
    return out


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook(nb, tmp_path):
    got = tmp_path / "marked.json"
    run([tool("python"), str(ROOT / "tests" / "run_notebook.py"), str(nb), str(got)], cwd=ROOT)
    cells = json.loads(nb.read_text())["cells"]
    committed = [c.get("outputs", []) for c in cells if c["cell_type"] == "code" and MARK in "".join(c["source"])]
    executed = json.loads(got.read_text())
    assert len(executed) == len(committed)
    for i, (want, have) in enumerate(zip(committed, executed)):
        assert _text(have) == _text(want), f"{nb.name}: marked cell {i + 1} printed {have} instead of {want}"
