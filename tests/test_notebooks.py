"""Every notebook runs top to bottom under nbdev-test (cells flagged `slow` or `notest` are skipped)."""
import pytest

from conftest import ROOT, run, tool

NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(nb):
    run([tool("nbdev-test"), str(nb), "--n-workers", "0"], cwd=ROOT)
