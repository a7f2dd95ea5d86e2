"""The learner's path: JupyterLab in a real browser runs the Mel chapter, and moving a slider redraws the figure."""
import json, os, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = ROOT / "tests" / "browser"
CHAPTER = "04_mel.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[list[str]]:
    "Command lines of the processes whose parent is `pid` (Linux /proc)."
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append((stat.parent / "cmdline").read_bytes().decode().split("\0"))
        except (OSError, IndexError, ValueError):
            pass  # a process that ended while we looked
    return found


@pytest.fixture
def browser():
    """Debian's Chromium and node, and playwright-core from npm (pinned by package-lock.json, fetched here if missing).

    A missing program skips the test with the command that installs it, except under CI=true, where it fails."""
    missing = [f"{what} is missing ({fix})" for what, fix, ok in (
        ("Debian's chromium", "apt-get install -y chromium", CHROMIUM.exists()),
        ("node", "apt-get install -y nodejs", shutil.which("node")),
        ("npm", "apt-get install -y npm", shutil.which("npm"))) if not ok]
    if not missing and not (DRIVER / "node_modules" / "playwright-core").is_dir():
        r = subprocess.run(["npm", "ci", "--prefix", str(DRIVER)], capture_output=True, text=True, timeout=300)
        if r.returncode:
            missing.append(f"npm ci --prefix tests/browser failed: {r.stderr.strip()[-500:]}")
    if missing:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail("CI must run the browser test: " + "; ".join(missing))
        pytest.skip("; ".join(missing))


@pytest.fixture
def jupyterlab(tmp_path):
    "JupyterLab on 127.0.0.1 with this venv's kernel, serving a copy of nbs/ (and a plots/ beside it for `../plots`)."
    root = tmp_path / "lab"
    shutil.copytree(ROOT / "nbs", root / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "plots").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MPLBACKEND"))}
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "run"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
        env[var] = str(tmp_path / "jupyter" / sub)  # nothing from ~/.jupyter, nothing left behind
    news = tmp_path / "jupyter" / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')  # no 'official Jupyter news?' popup over the screenshots
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.expose_app_in_browser=True"],  # the driver reads cell execution counts from the notebook model
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()[-4000:]}")
                time.sleep(0.5)
        yield dict(url=f"{base}/lab/tree/nbs/{CHAPTER}?reset&token={token}", server=server, root=root,
                   log=tmp_path / "jupyterlab.log")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started (its own session)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_mel_widget_in_jupyterlab(browser, jupyterlab, tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    driver = subprocess.Popen(["node", str(DRIVER / "mel_widget.mjs"), jupyterlab["url"], str(shots)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = driver.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(driver.pid, signal.SIGKILL)  # node and the Chromium it started
        out, err = driver.communicate()
        pytest.fail(f"the browser driver ran past 300 s\n{out}\n{err}")
    assert driver.returncode == 0 and out.strip(), f"driver exited {driver.returncode}\n{out}\n{err}"
    seen = json.loads(out.strip().splitlines()[-1])
    server_log = jupyterlab["log"].read_text()[-3000:]
    assert "failure" not in seen, f"{seen}\n--- JupyterLab log\n{server_log}"

    # the kernel JupyterLab started is this venv's Python (so `import ser_nbdev` is the checkout)
    kernels = [c for c in _children(jupyterlab["server"].pid) if "ipykernel_launcher" in c]
    assert kernels and all(c[0] == sys.executable for c in kernels), kernels

    assert seen["nCodeCells"] > 20 and seen["unexecuted"] == 0, seen
    assert not seen["cellErrors"], seen["cellErrors"]
    assert (jupyterlab["root"] / "plots" / "spec.png").stat().st_size > 0  # `../plots` went to the copy
    assert seen["before"]["n_mels"] == "128" and seen["after"]["n_mels"] != "128", seen
    assert seen["figureChanged"], seen
    assert not seen["widgetErrors"], seen["widgetErrors"]
    assert not seen["pageErrors"] and not seen["consoleErrors"], (seen["pageErrors"], seen["consoleErrors"])

    for name in ("jupyterlab_mel_before.png", "jupyterlab_mel_after.png"):  # what a learner sees, for the README
        shutil.copyfile(shots / name, ROOT / "plots" / name)


MIC_NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": [
    "import soundfile as sf\n",
    "from ser_nbdev.deploy import microphone\n",
    "from ser_nbdev.mel import FeatureConfig\n",
    "from ser_nbdev.train import TrainConfig, new_model, save_checkpoint\n",
    "cfg = TrainConfig()  # an untrained network: the test is about the samples' way, not the answer\n",
    "save_checkpoint('model.pt', new_model(cfg, 5), ['anger', 'disgust', 'fear', 'happiness', 'sadness'],\n",
    "                feature_cfg=FeatureConfig(), train_cfg=cfg)\n",
    "mic = microphone('model.pt', seconds=2.0)\n",
    "# what the kernel received, as the browser sent it, for the test to compare with the fake microphone's file\n",
    "mic.observe(lambda change: change['new'] and sf.write('heard.wav', *mic.recording, subtype='FLOAT'), 'result')\n",
    "mic"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5}


def test_microphone_widget_in_jupyterlab(browser, jupyterlab, tmp_path):
    # Chromium's fake microphone plays a clip of the embedded corpus (at 22 050 Hz; the browser records at its own
    # rate); the kernel must receive that audio, and the page must show the five probabilities
    import numpy as np, soundfile as sf, soxr
    from ser_nbdev.data import load_audio, load_corpus
    clip, sr = load_audio(load_corpus(None).clips[0].path)
    sf.write(tmp_path / "voice.wav", clip, sr, subtype="PCM_16")
    (jupyterlab["root"] / "nbs" / "mic_test.ipynb").write_text(json.dumps(MIC_NOTEBOOK))
    shots = tmp_path / "shots"
    shots.mkdir()
    url = jupyterlab["url"].replace(CHAPTER, "mic_test.ipynb")
    driver = subprocess.Popen(["node", str(DRIVER / "microphone.mjs"), url, str(shots), str(tmp_path / "voice.wav")],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        out, err = driver.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(driver.pid, signal.SIGKILL)
        out, err = driver.communicate()
        pytest.fail(f"the browser driver ran past 300 s\n{out}\n{err}")
    assert driver.returncode == 0 and out.strip(), f"driver exited {driver.returncode}\n{out}\n{err}"
    seen = json.loads(out.strip().splitlines()[-1])
    assert "failure" not in seen, f"{seen}\n--- JupyterLab log\n{jupyterlab['log'].read_text()[-3000:]}"
    assert not seen["cellErrors"], seen["cellErrors"]

    # the kernel received two seconds at the browser's rate, and they are the file's audio (fake capture loops it)
    y, rate = sf.read(jupyterlab["root"] / "nbs" / "heard.wav", dtype="float32")
    assert abs(len(y) / rate - 2.0) < 0.01 and rate >= 8000, (len(y), rate)
    y = soxr.resample(y, rate, sr)
    looped = np.tile(clip, 3)
    a = y[: len(y) // 2]  # one second, looked for at every lag in the looped file
    corr = np.correlate(looped, a, mode="valid") / (np.linalg.norm(a) * np.sqrt(
        np.convolve(looped ** 2, np.ones(len(a)), mode="valid")) + 1e-12)
    assert corr.max() > 0.9, corr.max()

    # the probabilities appear in the page, and a missing microphone is said in words
    assert len(seen["bars"]) == 5 and seen["image"] > 1000, seen
    probs = [float(b.split()[-1]) for b in seen["bars"]]
    assert abs(sum(probs) - 1) < 0.01 and "2.00 s at" in seen["status"], seen
    assert "no microphone was found" in seen["noMicrophone"] and seen["barsAfterError"] == 0, seen
    assert not seen["pageErrors"], seen["pageErrors"]
    shutil.copyfile(shots / "jupyterlab_microphone.png", ROOT / "plots" / "jupyterlab_microphone.png")
