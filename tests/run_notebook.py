"""Run one notebook exactly as `nbdev-test` does and save the outputs of its `# NBVAL_CHECK_OUTPUT` cells.

    python tests/run_notebook.py NOTEBOOK OUT.json [--flags slow]

nbdev's own `test_nb` executes the notebook (same skipped flags, `eval: false`, cell timeout and working folder as
`nbdev-test`); with `save=True` it hands the executed notebook to `write_nb`, which is replaced here so the notebook
on disk is never written. Exit 1 when a cell fails.
"""
import json, sys
from pathlib import Path

import nbdev.test
from nbdev.config import get_config

MARK = "# NBVAL_CHECK_OUTPUT"


def main(nb: str, out: str, force: str = "") -> int:
    executed = []
    nbdev.test.write_nb = lambda notebook, fn: executed.append(notebook)
    cfg = get_config(Path(nb).resolve().parent)
    flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
    ok, _ = nbdev.test.test_nb(Path(nb).resolve(), skip_flags=flags, force_flags=force.split(), save=True,
                               basepath=cfg.config_path, cell_timeout=cfg.cell_timeout or None)
    if not ok:
        return 1
    marked = [c.get("outputs", []) for c in executed[0].cells if c.cell_type == "code" and MARK in c.source]
    Path(out).write_text(json.dumps(marked))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    force = args[args.index("--flags") + 1] if "--flags" in args else ""
    sys.exit(main(args[0], args[1], force))
