"""The practitioner's path: the built wheel in a fresh venv without the dev extras, used from outside the repository.

Installing the runtime dependencies from the index costs minutes and 1.6 GB (torch alone is most of it), so the
fresh venv gets exactly the wheel's declared dependencies, and what they depend on, from this venv as links: the
same releases `pip install` would pick here, and nothing else (no nbdev, JupyterLab, IPython or ipywidgets).
"""
import importlib.metadata as md
import json, shutil, sys, textwrap, zipfile
from pathlib import Path

from packaging.requirements import Requirement

from conftest import ROOT, run

# the notebooks' tools and the optional extras (onnx, baseline, the widget): none is imported with the library
DEV_ONLY = ("nbdev", "jupyterlab", "IPython", "ipykernel", "ipywidgets", "execnb", "pytest", "anywidget", "onnxruntime",
            "opensmile")


def _closure(requires: list[str]) -> dict[str, md.Distribution]:
    "The installed distributions that `requires` (Requires-Dist lines) needs, transitively, markers applied."
    found, todo = {}, [(Requirement(r), ()) for r in requires]
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (*extras, "")):
            continue
        dist = md.distribution(req.name)  # PackageNotFoundError: a runtime dependency this venv lacks
        assert req.specifier.contains(dist.version, prereleases=True), f"{req}, but {dist.version} is installed"
        key = dist.metadata["Name"].lower()
        if key not in found:
            found[key] = dist
            todo += [(Requirement(r), tuple(req.extras)) for r in dist.requires or []]
    return found


def _link_site(dists: dict[str, md.Distribution], site: Path) -> None:
    "A site directory holding links to the top-level files and folders of `dists` (their RECORDs say which)."
    site.mkdir()
    for dist in dists.values():
        for top in {f.parts[0] for f in dist.files or () if f.parts[0] != ".." and not f.name.endswith(".pth")}:
            if not (site / top).exists():
                (site / top).symlink_to(dist.locate_file(top))


def test_wheel_in_a_fresh_venv(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_NBDEV_CACHE", str(tmp_path / "cache"))  # a new user's empty cache
    monkeypatch.delenv("PYTHONPATH", raising=False)
    src = tmp_path / "src"  # a copy: building writes build/ and *.egg-info beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "ser_nbdev", src / "ser_nbdev", ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)], cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("ser_nbdev-*.whl")
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        assert not [n for n in z.namelist() if n.endswith(".ipynb")]  # the notebooks are not shipped
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    py, site = venv / "bin" / "python", tmp_path / "runtime-site"
    deps = _closure(requires)
    assert not {d.lower() for d in DEV_ONLY} & set(deps), sorted(deps)
    _link_site(deps, site)
    venv_site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         cwd=tmp_path).stdout.strip())
    (venv_site / "runtime-deps.pth").write_text(f"{site}\n")
    run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)], cwd=tmp_path)
    assert "No broken requirements" in run([sys.executable, "-m", "pip", "--python", str(py), "check"],
                                           cwd=tmp_path).stdout

    # from a folder outside the repository: the API, with no notebook tool importable
    work = tmp_path / "user"
    work.mkdir()
    probe = textwrap.dedent(f"""
        import importlib, importlib.util, json, pkgutil
        import ser_nbdev
        for m in pkgutil.iter_modules(ser_nbdev.__path__):  # every module imports without the dev extras
            importlib.import_module(f'ser_nbdev.{{m.name}}')
        from ser_nbdev.synth import make_corpus
        make_corpus('tiny', n_speakers=4, n_utterances=2)  # 40 clips: one short epoch
        present = [m for m in {DEV_ONLY!r} if importlib.util.find_spec(m)]
        print(json.dumps(dict(file=ser_nbdev.__file__, present=present)))""")
    seen = json.loads(run([str(py), "-c", probe], cwd=work).stdout.strip().splitlines()[-1])
    assert Path(seen["file"]).is_relative_to(venv) and not seen["present"], seen

    # the console script: one epoch, then a prediction on a wav file
    cli = str(venv / "bin" / "ser-nbdev")
    r = run([cli, "train", "--data", "tiny", "--epochs", "1", "--out", "run", "--quiet"], cwd=work)
    assert "test accuracy" in r.stdout and (work / "run" / "model.pt").stat().st_size > 0
    r = run([cli, "predict", "run/model.pt", "tiny/anger/a01 (1).wav"], cwd=work)
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("tiny/anger/a01 (1).wav: ") and len(line.split("(")[-1].split()) == 10, line
