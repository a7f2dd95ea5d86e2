"""README.md is the markdown rendering of nbs/index.ipynb."""
from conftest import ROOT, run


def test_readme_is_generated_from_index():
    run(["bash", str(ROOT / ".ci" / "readme"), "--check"], cwd=ROOT)
