"""Real-browser test helpers: a notebook served by Voila, opened in Debian's chromium by Playwright.

Recipe (shared/TESTING-WIDGETS.md, recipe A): ``apt-get install chromium``; pip ``voila playwright
ipykernel`` (never ``playwright install``: no browser can be downloaded here). The tests serve the
notebook on loopback, open it headless in ``/usr/bin/chromium`` and assert on what the page shows.

Import from a test module the way the other tests import conftest helpers (``tests/`` is on
``sys.path`` under pytest)::

    from browser_support import require_browser_tools, serve_voila, launch_chromium, open_voila

Typical use::

    require_browser_tools()                       # skip (user) / fail (CI=true) without the tools
    from playwright.sync_api import sync_playwright
    with serve_voila(notebook) as (url, server), KernelMemoryMonitor(server.pid) as mem, \\
            sync_playwright() as p:
        browser = launch_chromium(p)
        page = open_voila(browser, url, server=server, ready=lambda pg: pg.get_by_role("button", name="Next"))
        ...
    print(mem.peak_rss)

DOM of ipywidgets 8.1 under Voila 0.5 (verified in chromium 156; see test_browser_smoke.py):

* Widget views are ``.lm-Widget.jupyter-widgets.widget-<kind>``; the notebook scrolls inside
  ``#rendered_cells``, not the body (see :func:`full_screenshot`).
* ``Button``: ``<button class="jupyter-button widget-button" title=description>`` ->
  ``get_by_role("button", name=description)`` (an ``icon`` is an ``<i class="fa ...">`` without text);
  ``disabled`` is the HTML attribute; ``button_style`` adds ``.mod-primary`` etc.
* ``ToggleButtons``: ``.widget-toggle-buttons`` (no ``.jupyter-widgets``) holding one
  ``button.widget-toggle-button[data-value=label]`` per option -> ``get_by_role("button", name=label)``;
  the selected one has ``.mod-active``.
* ``IntProgress``/``FloatProgress``: ``.widget-hprogress`` (``.widget-vprogress`` when vertical) >
  ``.progress`` > ``.progress-bar``. No ARIA role or value (``get_by_role("progressbar")`` finds
  nothing): the value is only the bar's inline ``width: P%`` (``height`` when vertical) with
  ``P = 100*(value-min)/(max-min)``; see :func:`progress_percent`. ``bar_style`` adds
  ``.progress-bar-success`` etc. ``description`` is the ``label.widget-label`` before it.
* ``Image``: ``<img class="widget-image" src="blob:http://127.0.0.1:P/uuid">`` -- a blob URL made from
  the bytes, not a data: URL; ``get_by_role("img")``; ``naturalWidth`` is the PNG's pixel width. Without
  a layout width it is stretched to the container's width (a 300 px PNG showed 1246 px wide).
* ``HTML``: ``.widget-html > .widget-html-content`` holds the markup; ``Label``: ``.widget-label`` is
  the text itself (``div.widget-label``; the ``label.widget-label`` inside other widgets is their
  description).
* ``Output``: ``.widget-output .jp-OutputArea-output[data-mime-type=...]``; ``print`` ->
  ``application/vnd.jupyter.stdout`` ``<pre>``; a bare ``matplotlib.figure.Figure`` is only
  ``text/plain`` (even with pyplot imported; only ``%matplotlib inline`` adds ``image/png``), drawn
  as ``<pre>&lt;Figure size 300x200 with 1 Axes&gt;</pre>``.
* Voila 0.5 pitfall: writing into an ``Output`` *while the notebook executes* (``with out:
  display(...)`` in a cell) intermittently leaves the page at "Executing 1 of N" for good (Voila's
  executor mirrors the Output widget and misses the cell's reply); fill Outputs from callbacks.
* ``Tab``: ``.widget-tab``; tabs are ``li[role=tab]`` -> ``get_by_role("tab", name=title)``, the current
  one ``aria-selected="true"`` / ``.lm-mod-current``; hidden panels carry ``.lm-mod-hidden``.
  ``Accordion``: ``.jupyter-widget-Collapse-header`` (with the title) and
  ``.jupyter-widget-Collapse-contents`` (``.lm-mod-hidden`` while collapsed).
* ``Dropdown``/``Text``: a ``<select>``/``<input>`` labelled by the description ->
  ``get_by_label(description).input_value()``; ``Checkbox``: ``get_by_role("checkbox", name=...)``;
  ``IntSlider``: ``get_by_role("slider")`` with ``aria-valuenow``.
* Voila's page asks cdn.jsdelivr.net for Font Awesome 5 CSS; offline the request fails (a console
  error, harmless: the bundled Font Awesome still draws the icons). Filter it from error checks.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import psutil

from conftest import skip_or_fail

#: Flags that keep Debian's chromium quiet and offline in a container (no sandbox as root, no GPU).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

#: Seconds a single notebook cell may run inside Voila before it is reported as timed out.
CELL_TIMEOUT = 600

#: The checkout under test: put first on the kernel's PYTHONPATH, so the served notebook imports the
#: same ``astrocal_widgets`` pytest imports (not a stale or broken installed copy).
REPO_ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- tools

def chromium_path() -> str | None:
    """The system chromium (Debian: ``/usr/bin/chromium``), or ``None`` when not installed."""
    if os.path.isfile("/usr/bin/chromium") and os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_browser_tools() -> list[str]:
    """Names of what the browser tests need and this environment lacks (empty when all present)."""
    missing = []
    if chromium_path() is None:
        missing.append("chromium (apt-get install chromium)")
    for module, hint in (("voila", "pip install voila"), ("playwright", "pip install playwright"),
                         ("ipykernel", "pip install ipykernel")):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(f"{module} ({hint})")
    return missing


def require_browser_tools() -> None:
    """Skip the calling test for a user without chromium/voila/playwright; fail it in CI (CI=true)."""
    missing = missing_browser_tools()
    if missing:
        skip_or_fail("browser tests need " + ", ".join(missing)
                     + "; never `playwright install`: the system chromium is used")


def launch_chromium(playwright, *, headless: bool = True, **kwargs):
    """Launch the system chromium through a Playwright instance (``sync_playwright()``'s value)."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=path, headless=headless,
                                      args=list(CHROMIUM_ARGS), **kwargs)


# ------------------------------------------------------------------------------------------ kernelspec

def _python3_kernelspec() -> dict | None:
    """The ``python3`` kernel spec Voila will use, found in-process the way Voila finds it.

    (``python -m jupyter kernelspec list`` would run the first ``jupyter-kernelspec`` on PATH,
    which may belong to another environment.)
    """
    try:
        from jupyter_client.kernelspec import KernelSpecManager
        return KernelSpecManager().get_all_specs().get("python3")
    except Exception:  # noqa: BLE001 - no jupyter_client or a broken spec folder: treat as missing
        return None


def _spec_runs_this_python(entry: dict) -> bool:
    """Whether a kernel spec starts its kernel with this interpreter.

    jupyter_client replaces a bare ``python``/``python3``/``python3.X`` by the server's own
    interpreter (Voila runs as ``sys.executable -m voila``). Absolute paths are compared without
    resolving symlinks: a virtual environment's ``python`` is a symlink to the base interpreter,
    which runs another environment.
    """
    argv = (entry.get("spec") or {}).get("argv") or []
    if not argv:
        return False
    exe = argv[0]
    if exe in {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}:
        return True
    if not os.path.isabs(exe):
        return False
    return os.path.dirname(os.path.abspath(exe)) == os.path.dirname(os.path.abspath(sys.executable))


@functools.lru_cache(maxsize=1)
def ensure_kernelspec() -> dict[str, str]:
    """Make sure Voila finds a ``python3`` kernel spec running this interpreter (else it answers 500).

    Returns extra environment variables for the Voila process. When ``python3`` is missing, it is
    installed with ``ipykernel install --sys-prefix`` (inside this environment only, as the README of
    ipykernel recommends for virtual environments). When a ``python3`` spec exists but starts another
    interpreter (e.g. one in ``~/.local/share/jupyter`` shadowing this environment), the user's spec
    is left alone: a private spec is written to a temporary folder and put first on ``JUPYTER_PATH``
    for the Voila process only.
    """
    entry = _python3_kernelspec()
    if entry is not None and _spec_runs_this_python(entry):
        return {}
    if entry is None:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
                       check=True, capture_output=True, timeout=120)
        entry = _python3_kernelspec()
        if entry is not None and _spec_runs_this_python(entry):
            return {}
    private = Path(tempfile.mkdtemp(prefix="astrocal-kernelspec-"))
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(private), "--name", "python3"],
                   check=True, capture_output=True, timeout=120)
    jupyter_path = str(private / "share" / "jupyter")
    if os.environ.get("JUPYTER_PATH"):
        jupyter_path += os.pathsep + os.environ["JUPYTER_PATH"]
    return {"JUPYTER_PATH": jupyter_path}


# --------------------------------------------------------------------------------------- Voila server

def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 60) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def kill_tree(proc: psutil.Process | int, timeout: float = 10.0) -> None:
    """Terminate a process and all its descendants (SIGTERM, then SIGKILL for what is left)."""
    try:
        parent = proc if isinstance(proc, psutil.Process) else psutil.Process(proc)
        procs = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=timeout)


@dataclass
class VoilaServer:
    """A running Voila: its ``Popen``, URL and log file (stdout and stderr together)."""

    popen: subprocess.Popen
    url: str
    port: int
    log_path: Path
    command: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, n: int = 60) -> str:
        """The last ``n`` lines of Voila's log (kernel errors and cell tracebacks show up here)."""
        return _tail(self.log_path, n)


def _wait_listening(server: VoilaServer, deadline: float) -> None:
    """Wait until Voila accepts TCP connections and answers HTTP on a static path (no kernel started)."""
    probe = f"http://127.0.0.1:{server.port}/voila/static/"  # 404 is fine: the server answered
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise RuntimeError(f"voila exited with code {server.popen.returncode} before serving:\n"
                               f"{server.log_tail()}")
        try:
            with urllib.request.urlopen(probe, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
            time.sleep(0.2)
    raise TimeoutError(f"voila did not answer on port {server.port} in time:\n{server.log_tail()}")


@contextlib.contextmanager
def serve_voila(notebook_path: str | os.PathLike, *, cwd: str | os.PathLike | None = None,
                timeout: float = 120, cell_timeout: int = CELL_TIMEOUT,
                extra_args: list[str] | tuple[str, ...] = (), log_dir: str | os.PathLike | None = None,
                env: dict[str, str] | None = None, pythonpath: list[str | os.PathLike] | None = None,
                ) -> Iterator[tuple[str, VoilaServer]]:
    """Serve one notebook with Voila on 127.0.0.1; yields ``(url, server)``.

    The notebook is only executed when a page requests the URL (one kernel per page load). ``cwd``
    is the kernel's working folder (default: the notebook's folder). ``timeout`` bounds the server
    start; ``cell_timeout`` bounds each cell's execution (``--VoilaExecutor.timeout``; Voila 0.5
    has no ``ExecutePreprocessor``, and its default is no limit). On exit the whole process tree
    (server and kernels) is terminated. Voila's output goes to ``voila-<port>.log`` in ``log_dir``
    (default: next to the notebook); :meth:`VoilaServer.log_tail` gives its end for failure messages.
    ``pythonpath`` (default: the repository root) is prepended to the kernel's ``PYTHONPATH``;
    ``env`` adds environment variables for the server and its kernels.
    """
    notebook_path = Path(notebook_path).resolve()
    cwd = Path(cwd) if cwd is not None else notebook_path.parent
    log_dir = Path(log_dir) if log_dir is not None else notebook_path.parent
    extra_env = env
    env = dict(os.environ)
    env.update(ensure_kernelspec())
    env["PYTHONUNBUFFERED"] = "1"
    paths = [str(x) for x in (pythonpath if pythonpath is not None else [REPO_ROOT])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra_env or {})

    deadline = time.monotonic() + timeout
    server = None
    for attempt in range(3):  # the free port can be taken between free_port() and voila's bind
        port = free_port()
        log_path = log_dir / f"voila-{port}.log"
        command = [
            sys.executable, "-m", "voila", str(notebook_path),
            "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
            f"--VoilaExecutor.timeout={int(cell_timeout)}",
            f"--VoilaExecutor.startup_timeout={int(max(60, timeout))}",
            "--show_tracebacks=True",
            *extra_args,
        ]
        log = open(log_path, "wb")
        popen = subprocess.Popen(command, cwd=str(cwd), env=env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()  # the child holds its own descriptor
        candidate = VoilaServer(popen, f"http://127.0.0.1:{port}/", port, log_path, command)
        try:
            _wait_listening(candidate, deadline)
        except RuntimeError:
            kill_tree(popen.pid)
            popen.wait(timeout=10)
            if attempt < 2 and "already in use" in candidate.log_tail().lower():
                continue
            raise
        except BaseException:
            kill_tree(popen.pid)
            popen.wait(timeout=10)
            raise
        server = candidate
        break
    assert server is not None
    try:
        yield server.url, server
    finally:
        kill_tree(server.popen.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.popen.wait(timeout=10)


# ------------------------------------------------------------------------------------- kernel memory

class KernelMemoryMonitor(threading.Thread):
    """Samples the RSS of the kernel(s) a Voila server started, every ``interval`` seconds.

    Kernels are the descendants of ``server_pid`` whose command line contains ``ipykernel``
    (``python -m ipykernel_launcher -f ...``). With ``include_kernel_children`` their own
    descendants (e.g. dask worker processes) are counted with them. ``peak_rss`` is the largest sum
    over one sample, in bytes; ``peak_rss_by_pid`` the peak of each kernel. Use as a context manager
    or call :meth:`stop` (which returns ``peak_rss``).
    """

    def __init__(self, server_pid: int, *, interval: float = 0.2, include_kernel_children: bool = False):
        super().__init__(name=f"kernel-rss-{server_pid}", daemon=True)
        self.server_pid = server_pid
        self.interval = interval
        self.include_kernel_children = include_kernel_children
        self.peak_rss = 0
        self.peak_rss_by_pid: dict[int, int] = {}
        self.kernel_pids: list[int] = []
        self.samples = 0
        self._halt = threading.Event()
        self._procs: dict[int, psutil.Process] = {}

    def _kernels(self) -> list[psutil.Process]:
        try:
            descendants = psutil.Process(self.server_pid).children(recursive=True)
        except psutil.Error:
            return []
        kernels = []
        for p in descendants:
            proc = self._procs.setdefault(p.pid, p)  # keep one Process object per pid
            try:
                if any("ipykernel" in part for part in proc.cmdline()):
                    kernels.append(proc)
            except psutil.Error:
                continue
        return kernels

    def sample(self) -> int:
        """Take one sample now; returns the summed kernel RSS it saw (bytes)."""
        total = 0
        for kernel in self._kernels():
            procs = [kernel]
            if self.include_kernel_children:
                with contextlib.suppress(psutil.Error):
                    procs += kernel.children(recursive=True)
            rss = 0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            if kernel.pid not in self.kernel_pids:
                self.kernel_pids.append(kernel.pid)
            self.peak_rss_by_pid[kernel.pid] = max(self.peak_rss_by_pid.get(kernel.pid, 0), rss)
            total += rss
        self.samples += 1
        self.peak_rss = max(self.peak_rss, total)
        return total

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> int:
        """Stop sampling (after one last sample) and return ``peak_rss``."""
        if not self._halt.is_set():
            self._halt.set()
            if self.is_alive():
                self.join(timeout=5)
            self.sample()
        return self.peak_rss

    def __enter__(self) -> "KernelMemoryMonitor":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __str__(self) -> str:
        return f"kernel peak RSS {self.peak_rss / 2**20:.1f} MiB (pids {self.kernel_pids}, {self.samples} samples)"


# ------------------------------------------------------------------------------------------ the page

#: Lines of Voila's log that mean the notebook will not finish rendering.
_FATAL_LOG = ("CellExecutionError", "Cell execution timed out", "Kernel died", "DeadKernelError",
              "500 GET /")


def open_voila(browser, url: str, *, server: VoilaServer | None = None,
               ready: Callable | str = ".jupyter-widgets", timeout: float = 120,
               viewport: dict | None = None, fail_on_cell_error: bool = True):
    """Open ``url`` in a new page and wait until the notebook has executed and widgets are drawn.

    ``ready`` is a CSS selector or a callable ``page -> Locator`` for something the rendered page
    must show (e.g. ``lambda p: p.get_by_role("button", name="Next")``). Voila streams the page while
    the kernel executes the cells, then its widget manager draws the views: waiting on a concrete
    widget is reliable, ``load``/``networkidle`` is not. With ``server`` given, the wait stops early
    (with Voila's log tail in the message) when the server dies or, if ``fail_on_cell_error``, when
    its log reports a cell error or timeout. Page console errors, uncaught exceptions and failed
    requests are collected in ``page.voila_errors``.
    """
    page = browser.new_page(viewport=viewport or {"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("requestfailed", lambda req: errors.append(f"requestfailed: {req.url} ({req.failure})"))
    page.voila_errors = errors  # type: ignore[attr-defined]
    log_start = server.log_path.stat().st_size if server is not None and server.log_path.exists() else 0

    def fail(why: str, exc: BaseException | None = None):
        log = f"\n--- voila log tail ---\n{server.log_tail()}" if server is not None else ""
        try:
            text = page.evaluate("() => document.body ? document.body.innerText : ''")[-2000:]
        except Exception as err:  # noqa: BLE001 - diagnostics only
            text = f"(unavailable: {err})"
        hint = ""
        if text.lstrip().startswith("Executing"):
            hint = ("\n(Voila is stuck executing the notebook. If a cell writes into an Output widget "
                    "(`with out: display(...)`), Voila 0.5's executor can miss that cell's reply and "
                    "never finish: fill Output widgets from callbacks, after the page is drawn.)")
        raise AssertionError(f"the Voila page did not render {ready!r}: {why}{hint}\n"
                             f"--- page text ---\n{text}\n"
                             f"--- page errors ---\n{chr(10).join(errors[-20:])}{log}") from exc

    deadline = time.monotonic() + timeout
    try:
        page.goto(url, wait_until="commit", timeout=timeout * 1000)
    except Exception as exc:  # noqa: BLE001 - any Playwright error: report it with the log
        fail(f"navigation failed: {exc}", exc)
    locator = (page.locator(ready) if isinstance(ready, str) else ready(page)).first
    while True:
        try:
            locator.wait_for(state="visible", timeout=1000)
            break
        except Exception as exc:  # noqa: BLE001 - playwright's TimeoutError: poll again
            if time.monotonic() > deadline:
                fail(f"not visible after {timeout:.0f} s", exc)
            if server is not None:
                if server.popen.poll() is not None:
                    fail(f"voila exited with code {server.popen.returncode}", exc)
                if fail_on_cell_error:
                    with contextlib.suppress(OSError), open(server.log_path, "rb") as fh:
                        fh.seek(log_start)
                        new = fh.read().decode(errors="replace")
                        bad = next((m for m in _FATAL_LOG if m in new), None)
                        if bad:
                            fail(f"Voila's log reports {bad!r} while executing the notebook", exc)
    page.set_default_timeout(30_000)
    return page


_PERCENT = {"width": re.compile(r"(?:^|;)\s*width:\s*([0-9.]+)%"),
            "height": re.compile(r"(?:^|;)\s*height:\s*([0-9.]+)%")}


def progress_percent(locator) -> float:
    """Percent filled of an ``IntProgress``/``FloatProgress`` view.

    ``locator`` is the view (``.widget-hprogress`` or ``.widget-vprogress``) or anything containing
    one. ipywidgets 8 has no ARIA role or value on it: the value is only the inline ``width``
    (horizontal) or ``height`` (vertical) of ``.progress-bar``, ``100 * (value - min) / (max - min)``.
    """
    bar = locator.locator(".progress-bar").first
    style = bar.get_attribute("style") or ""
    vertical = bar.evaluate("e => !!e.closest('.widget-vprogress')")
    match = _PERCENT["height" if vertical else "width"].search(style)
    if match is None:
        raise AssertionError(f"no percentage in the progress bar style {style!r}")
    return float(match.group(1))


def full_screenshot(page, path: str | os.PathLike) -> Path:
    """Screenshot the whole rendered notebook, not only the viewport.

    Voila's lab template scrolls inside ``#rendered_cells`` (the body is exactly the viewport), so
    ``full_page=True`` alone captures the first screen only: the viewport is grown to the content's
    height for the shot, then restored.
    """
    size = page.viewport_size or {"width": 1280, "height": 900}
    height = page.evaluate("""() => {
        const c = document.querySelector('#rendered_cells');
        return Math.max(document.documentElement.scrollHeight, c ? c.scrollHeight + c.offsetTop + 16 : 0);
    }""")
    try:
        page.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), 16000))})
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    return Path(path)
