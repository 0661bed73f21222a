"""binder/ builds a working environment, checked the way repo2docker builds it (mybinder.org cannot be reached).

From the repository's files alone (copied to a fresh folder): a clean virtual environment with the Python of
``binder/runtime.txt``, ``binder/requirements.txt`` installed into it, ``binder/postBuild`` run in the
copy. Then, in that environment only:

- every module the notebooks import is importable (a requirement missing from binder/ fails here);
- every notebook executes top to bottom in the venv's kernel, as a Binder user would run them
  (``ASTROCAL_BINDER_NOTEBOOKS=first`` executes only ``01-quick-start``, the one the first badge opens);
- ``voila notebooks/07-dashboard.ipynb`` answers on localhost, and chromium (Playwright) shows the rendered
  dashboard, whose Check button runs the quality checks in the environment's kernel.

The requirements are installed by ``uv pip install`` when uv is available (the ``test`` extra has it: the
same packages as pip resolves, in about 20 s instead of about 110 s on 2 cores), else by the environment's
pip, as repo2docker does. Marked slow; CI runs it. Skips (fails in CI) without chromium or Playwright.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser_support import launch_chromium, open_voila, require_browser_tools, serve_voila
from conftest import skip_or_fail
from notebook_support import REPO_ROOT

BINDER = REPO_ROOT / "binder"
OFFLINE_NOISE = ("cdn.jsdelivr.net", "ERR_NAME_NOT_RESOLVED", "ERR_INTERNET_DISCONNECTED")
INSTALL_TIMEOUT = 1200

#: Executes one notebook with the venv's nbclient and prints a JSON line: errors and seconds.
EXECUTE = """
import json, sys, time
import nbclient, nbformat
path, workdir = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
start = time.monotonic()
error = None
try:
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": workdir}}).execute()
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"[-3000:]
outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
print(json.dumps({"seconds": time.monotonic() - start, "error": error,
                  "images": sum("image/png" in o.get("data", {}) for o in outputs)}))
"""


def _repository_copy(target: Path) -> Path:
    """The repository's files (tracked, and new ones not ignored), as a clone would have them."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=REPO_ROOT, capture_output=True, check=False)
    if listing.returncode != 0:
        pytest.skip("not a git checkout: the repository's files cannot be told from build products")
    for name in filter(None, listing.stdout.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _runtime_python() -> str:
    """An interpreter of the version binder/runtime.txt names (``python-3.11``)."""
    version = re.fullmatch(r"python-(\d+\.\d+)", (BINDER / "runtime.txt").read_text().strip())
    assert version, "binder/runtime.txt must read python-X.Y"
    if "{}.{}".format(*sys.version_info[:2]) == version.group(1):
        return sys.executable
    found = shutil.which(f"python{version.group(1)}")
    if found is None:
        skip_or_fail(f"binder/runtime.txt asks for Python {version.group(1)}, which is not installed here")
    return found


def _notebook_imports() -> set[str]:
    """Top-level modules imported by the code cells of every notebook."""
    modules = set()
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules.add(node.module.split(".")[0])
    return modules


def _run(command, *, cwd, env, timeout=INSTALL_TIMEOUT, what="") -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{what or command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


def test_readme_badges_open_the_quick_start_in_jupyterlab_and_the_dashboard_in_voila():
    readme = (REPO_ROOT / "README.md").read_text()
    links = re.findall(r"\(https://mybinder\.org/v2/gh/[^/\s]+/[^/\s]+/HEAD\?urlpath=([^)\s]+)\)", readme)
    lab = [u for u in links if u.startswith("lab/tree/")]
    voila = [u for u in links if u.startswith("voila/render/")]
    assert len(lab) == 1 and len(voila) == 1, links
    assert re.fullmatch(r"lab/tree/notebooks/01-[a-z0-9-]+\.ipynb", lab[0]), lab
    assert re.fullmatch(r"voila/render/notebooks/07-[a-z0-9-]+\.ipynb", voila[0]), voila
    for url in (lab[0], voila[0]):
        assert (REPO_ROOT / url.split("/", 2)[2]).is_file(), url


@pytest.mark.slow
def test_binder_environment_serves_the_dashboard(tmp_path, record_property):
    require_browser_tools()
    from playwright.sync_api import expect, sync_playwright

    times: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        times[name] = now - clock
        clock = now

    repo = _repository_copy(tmp_path / "repo")
    venv = tmp_path / "venv"
    _run([_runtime_python(), "-m", "venv", venv], cwd=tmp_path, env=os.environ.copy(), what="python -m venv")
    python = venv / "bin" / "python"
    # The environment of every process in the venv: its bin first, nothing of this checkout on the path,
    # private Jupyter folders (a user's kernel specs or config must not change what is tested).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JUPYTER_PATH", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"), JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
               TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    env.pop("ASTROCAL_FRAMES", None)
    requirements = repo / "binder" / "requirements.txt"
    if importlib.util.find_spec("uv") is not None:
        installer = "uv"
        _run([sys.executable, "-m", "uv", "pip", "install", "--python", python, "-r", requirements],
             cwd=repo, env=env, what="uv pip install -r binder/requirements.txt")
    else:
        installer = "pip"
        _run([python, "-m", "pip", "install", "-r", requirements], cwd=repo, env=env,
             what="pip install -r binder/requirements.txt")
    lap(f"install ({installer})")
    _run(["bash", repo / "binder" / "postBuild"], cwd=repo, env=env, what="binder/postBuild")
    lap("postBuild")

    # The package of the copy, Voila's configuration, every module the notebooks import.
    found = _run([python, "-c", "import astrocal_widgets, voila; print(astrocal_widgets.__file__)"],
                 cwd=tmp_path, env=env).stdout.strip()
    assert Path(found).resolve().is_relative_to(repo.resolve()), found
    assert (venv / "etc" / "jupyter" / "voila.json").is_file()
    imports = sorted(_notebook_imports())
    missing = _run([python, "-c", "import importlib.util, sys; "
                    "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))", *imports],
                   cwd=tmp_path, env=env).stdout.split()
    assert not missing, f"the notebooks import {missing}, which binder/requirements.txt does not install"
    kernels = _run([python, "-c", "from jupyter_client.kernelspec import KernelSpecManager as K; "
                    "import json; print(json.dumps(K().get_kernel_spec('python3').argv))"],
                   cwd=tmp_path, env=env).stdout
    assert json.loads(kernels)[0] in ("python", "python3", str(python)), kernels
    lap("checks")

    # The notebooks, executed in the venv's kernel.
    everything = os.environ.get("ASTROCAL_BINDER_NOTEBOOKS", "all") != "first"
    notebooks = sorted((repo / "notebooks").glob("*.ipynb"))
    for notebook in notebooks if everything else [n for n in notebooks if n.name.startswith("01-")]:
        workdir = tmp_path / "run" / notebook.stem
        workdir.mkdir(parents=True)
        result = json.loads(_run([python, "-c", EXECUTE, notebook, workdir], cwd=workdir, env=env,
                                 what=f"executing {notebook.name}").stdout.strip().splitlines()[-1])
        assert result["error"] is None, f"{notebook.name} in the Binder environment: {result['error']}"
        lap(f"execute {notebook.name}")

    # Voila, from the venv, serving the dashboard; chromium shows it.
    dashboard = next(n for n in notebooks if n.name.startswith("07-"))
    served = tmp_path / "served"
    served.mkdir()
    with serve_voila(dashboard, python=python, cwd=served, log_dir=tmp_path, env=env) as (url, server), \
            sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = open_voila(browser, url, server=server,
                              ready=lambda pg: pg.get_by_role("button", name="Next", exact=True))
            lap("voila: dashboard rendered")
            body = page.locator(".astrocal-dashboard")
            expect(body).to_be_visible()
            page.get_by_role("button", name="Check", exact=True).click()
            expect(body.get_by_text("OVERALL").first).to_be_visible(timeout=180_000)
            assert not page.locator(".astrocal-error").count(), body.inner_text()[-2000:]
            unexpected = [e for e in page.voila_errors if not any(n in e for n in OFFLINE_NOISE)]
            assert not unexpected, unexpected
            lap("voila: checks run in the kernel")
        finally:
            browser.close()
    assert "voila" in server.command[2] and server.command[0] == str(python)
    record_property("measured", "binder environment: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
                    + f"; total {sum(times.values()):.1f} s")
