"""The public API: every module says what it exports, each export says what it does, and every option is explained."""
import argparse, dataclasses, importlib, inspect, pkgutil

import pytest

import ser_nbdev

MODULES = sorted(m.name for m in pkgutil.iter_modules(ser_nbdev.__path__) if not m.name.startswith("_"))


@pytest.mark.parametrize("name", MODULES)
def test_module_exports_are_documented(name):
    mod = importlib.import_module(f"ser_nbdev.{name}")
    assert mod.__doc__ and mod.__doc__.strip(), f"ser_nbdev.{name} has no module docstring"
    assert getattr(mod, "__all__", None), f"ser_nbdev.{name} has no __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"ser_nbdev.{name}.__all__ names what it does not define: {missing}"
    undocumented = []
    for n in mod.__all__:
        obj = getattr(mod, n)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue  # constants carry a comment, not a docstring
        doc = obj.__doc__ or ""
        if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            doc = ""  # the signature that @dataclass writes when the class has no docstring
        if not doc.strip():
            undocumented.append(n)
    assert not undocumented, f"ser_nbdev.{name}: no docstring on {undocumented}"


def test_every_command_line_option_is_explained():
    from ser_nbdev.cli import parser

    top = parser()
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {a.dest: a.help for a in sub._choices_actions}
    unexplained = []
    for command, p in sub.choices.items():
        if not (summaries.get(command) and p.description):
            unexplained.append(f"{command} (no summary or description)")
        for action in p._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                unexplained.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
    assert {"demo", "inspect", "train", "evaluate", "predict", "experiments"} <= set(sub.choices)
    assert not unexplained, f"options without help: {unexplained}"
    for p in sub.choices.values():
        p.format_help()  # '%(default)s' and friends expand
