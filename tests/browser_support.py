"""Real-browser test helpers: a notebook served by Voila, opened in Debian's chromium by Playwright.

Recipe: ``apt-get install chromium``; pip ``voila playwright
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
VOILA_CONFIG = Path(__file__).resolve().parents[1] / "binder" / "voila.json"
#: What binder/start exports for the server and its kernels (tests/widgets/test_dashboard_memory.py checks it).
BINDER_ENV = {"MALLOC_ARENA_MAX": "2", "NUMPY_MADVISE_HUGEPAGE": "0"}
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


class _ServerProcess:
    """What the Voila and Jupyter servers share: a ``popen`` and a ``log_path`` (stdout and stderr)."""

    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, n: int = 60) -> str:
        """The last ``n`` lines of the server's log (kernel errors and cell tracebacks show up here)."""
        return _tail(self.log_path, n)


@dataclass
class VoilaServer(_ServerProcess):
    """A running Voila: its ``Popen``, URL and log file (stdout and stderr together)."""

    popen: subprocess.Popen
    url: str
    port: int
    log_path: Path
    command: list[str] = field(default_factory=list)


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


def _finish_env(env: dict[str, str], pythonpath, extra_env: dict[str, str] | None) -> None:
    """Unbuffered output; the repository (or ``pythonpath``) first on the kernel's path; the caller's extras."""
    env["PYTHONUNBUFFERED"] = "1"
    paths = [str(x) for x in (pythonpath if pythonpath is not None else [REPO_ROOT])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra_env or {})


def _start_server(log_dir: Path, log_name: str, make_command: Callable[[int], list[str]], cwd: Path,
                  env: dict[str, str], make_server: Callable, wait: Callable, deadline: float):
    """Start a server on a free port, retrying when the port was taken between choosing and binding."""
    for attempt in range(3):
        port = free_port()
        log_path = log_dir / log_name.format(port=port)
        command = make_command(port)
        log = open(log_path, "wb")
        popen = subprocess.Popen(command, cwd=str(cwd), env=env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()  # the child holds its own descriptor
        candidate = make_server(popen, port, log_path, command)
        try:
            wait(candidate, deadline)
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
        return candidate
    raise RuntimeError("no free port could be bound in 3 attempts")


@contextlib.contextmanager
def serve_voila(notebook_path: str | os.PathLike, *, cwd: str | os.PathLike | None = None,
                timeout: float = 120, cell_timeout: int = CELL_TIMEOUT,
                extra_args: list[str] | tuple[str, ...] = (), log_dir: str | os.PathLike | None = None,
                env: dict[str, str] | None = None, pythonpath: list[str | os.PathLike] | None = None,
                python: str | os.PathLike | None = None) -> Iterator[tuple[str, VoilaServer]]:
    """Serve one notebook with Voila on 127.0.0.1; yields ``(url, server)``.

    The notebook is only executed when a page requests the URL (one kernel per page load). ``cwd``
    is the kernel's working folder (default: the notebook's folder). ``timeout`` bounds the server
    start; ``cell_timeout`` bounds each cell's execution (``--VoilaExecutor.timeout``; Voila 0.5
    has no ``ExecutePreprocessor``, and its default is no limit). On exit the whole process tree
    (server and kernels) is terminated. Voila's output goes to ``voila-<port>.log`` in ``log_dir``
    (default: next to the notebook); :meth:`VoilaServer.log_tail` gives its end for failure messages.
    ``pythonpath`` (default: the repository root) is prepended to the kernel's ``PYTHONPATH``;
    ``env`` adds environment variables for the server and its kernels, after Binder's own
    (:data:`BINDER_ENV`, what ``binder/start`` exports). ``python`` runs Voila from another environment
    (e.g. a virtual environment built from ``binder/``; its own ``python3`` kernel spec is used and nothing is
    added to ``PYTHONPATH`` unless ``pythonpath`` is given); default: this interpreter.
    """
    notebook_path = Path(notebook_path).resolve()
    cwd = Path(cwd) if cwd is not None else notebook_path.parent
    log_dir = Path(log_dir) if log_dir is not None else notebook_path.parent
    extra_env = env
    env = dict(os.environ)
    if python is None:
        env.update(ensure_kernelspec())
    elif pythonpath is None:
        pythonpath = []
    # Binder's Voila configuration (binder/voila.json leaves out JupyterLab extensions Voila's page
    # cannot load, e.g. Notebook 7.6's, which otherwise log console errors), in a private config
    # folder so that a user's ~/.jupyter does not change what is tested.
    config_dir = Path(tempfile.mkdtemp(prefix="astrocal-voila-config-"))
    atexit.register(shutil.rmtree, config_dir, ignore_errors=True)  # if the server never starts
    shutil.copy(VOILA_CONFIG, config_dir / "voila.json")
    env["JUPYTER_CONFIG_DIR"] = str(config_dir)
    env.update(BINDER_ENV)  # as Binder's start script sets them
    _finish_env(env, pythonpath, extra_env)

    def command(port: int) -> list[str]:
        return [
            str(python or sys.executable), "-m", "voila", str(notebook_path),
            "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
            f"--VoilaExecutor.timeout={int(cell_timeout)}",
            f"--VoilaExecutor.startup_timeout={int(max(60, timeout))}",
            "--show_tracebacks=True",
            *extra_args,
        ]

    server = _start_server(log_dir, "voila-{port}.log", command, cwd, env,
                           lambda popen, port, log_path, cmd: VoilaServer(popen, f"http://127.0.0.1:{port}/", port,
                                                                          log_path, cmd),
                           _wait_listening, time.monotonic() + timeout)
    assert server is not None
    try:
        yield server.url, server
    finally:
        kill_tree(server.popen.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.popen.wait(timeout=10)
        shutil.rmtree(config_dir, ignore_errors=True)


# ------------------------------------------------------------------------------------- kernel memory

class KernelMemoryMonitor(threading.Thread):
    """Samples the RSS of the kernel(s) a Voila server started, every ``interval`` seconds.

    Kernels are the descendants of ``server_pid`` whose command line contains ``ipykernel``
    (``python -m ipykernel_launcher -f ...``). With ``include_kernel_children`` their own
    descendants (e.g. dask worker processes) are counted with them. ``peak_rss`` is the largest sum
    over one sample, in bytes; ``peak_rss_by_pid`` the peak of each kernel; :meth:`window_peak_rss` the
    peak since its last call. Use as a context manager or call :meth:`stop` (which returns ``peak_rss``).
    """

    def __init__(self, server_pid: int, *, interval: float = 0.2, include_kernel_children: bool = False):
        super().__init__(name=f"kernel-rss-{server_pid}", daemon=True)
        self.server_pid = server_pid
        self.interval = interval
        self.include_kernel_children = include_kernel_children
        self.peak_rss = 0
        self._window_peak = 0  # the peak since the last window_peak_rss()
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
        self._window_peak = max(self._window_peak, total)
        return total

    def window_peak_rss(self) -> int:
        """The peak summed RSS since the last call (or the start), in bytes; the next window starts now.

        Called after each step of a walk-through, it gives each step's own peak (``peak_rss`` only grows).
        """
        self.sample()
        peak, self._window_peak = self._window_peak, 0
        return peak

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


def step_to(dashboard, expect, title: str, *, timeout: float = 30_000,
            each: Callable[[str], None] | None = None) -> None:
    """Show the dashboard's step ``title`` the way a person does: Next or Back, one step at a time.

    ``dashboard`` is the ``.astrocal-dashboard`` locator; the order is the dashboard's own
    (:data:`astrocal_widgets.widgets.STEP_TITLES`), so tests name steps, never positions. Each step
    passed is waited for by its heading, then ``each(title)`` runs (e.g. a check for errors).
    """
    from astrocal_widgets.widgets import STEP_TITLES

    def heading(name: str):
        return dashboard.locator("h3").filter(has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))

    deadline = time.monotonic() + timeout / 1000
    while (here := next((t for t in STEP_TITLES if heading(t).count()), None)) is None:
        if time.monotonic() > deadline:  # (the kernel may be redrawing the step: its heading comes back)
            raise AssertionError(f"no step heading shown (the steps are {STEP_TITLES})")
        time.sleep(0.2)
    start, stop = STEP_TITLES.index(here), STEP_TITLES.index(title)
    sign = 1 if stop >= start else -1
    for k in range(start + sign, stop + sign, sign):
        dashboard.get_by_role("button", name="Next" if sign > 0 else "Back", exact=True).click()
        expect(heading(STEP_TITLES[k])).to_be_visible(timeout=timeout)
        if each is not None:
            each(STEP_TITLES[k])


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


# ------------------------------------------------------------------- JupyterLab 4 / Notebook 7 server

#: Settings written into the private JupyterLab user-settings folder of :func:`serve_jupyter`:
#: no "Would you like to receive official Jupyter news?" toast, no update check (both would also
#: try the network) and no other toast popping over the notebook in screenshots (page errors are
#: still collected from the console).
JUPYTER_USER_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
}

#: The Python module that starts each app (``python -m MODULE``) and the page of a notebook.
JUPYTER_APPS = {"lab": ("jupyterlab", "lab/tree/{path}"), "notebook": ("notebook", "notebooks/{path}")}


def missing_jupyter_app(app: str = "lab") -> list[str]:
    """What :func:`serve_jupyter` needs for ``app`` ("lab" or "notebook") and this environment lacks."""
    if app not in JUPYTER_APPS:
        raise ValueError(f"app must be one of {sorted(JUPYTER_APPS)}, not {app!r}")
    missing = []
    for module, hint in ((JUPYTER_APPS[app][0], f"pip install {'jupyterlab' if app == 'lab' else 'notebook'}"),
                         ("jupyterlab_widgets", "pip install jupyterlab_widgets")):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(f"{module} ({hint})")
    return missing


@dataclass
class JupyterServer(_ServerProcess):
    """A running JupyterLab 4 / Notebook 7 server: its ``Popen``, URL, root folder and log file."""

    popen: subprocess.Popen
    app: str
    url: str
    port: int
    root_dir: Path
    log_path: Path
    home: Path  #: the private config/data/runtime/settings/workspaces folders are below this
    command: list[str] = field(default_factory=list)

    def notebook_url(self, path: str) -> str:
        """The page that opens ``path`` (relative to ``root_dir``) in this app."""
        return self.url + JUPYTER_APPS[self.app][1].format(path=urllib.request.pathname2url(path).lstrip("/"))


def _wait_jupyter(server: JupyterServer, deadline: float) -> None:
    """Wait until the server answers ``GET /api`` (its version; no kernel is started)."""
    probe = f"http://127.0.0.1:{server.port}/api"
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise RuntimeError(f"jupyter {server.app} exited with code {server.popen.returncode} "
                               f"before serving:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(probe, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"jupyter {server.app} did not answer on port {server.port} in time:\n{server.log_tail()}")


@contextlib.contextmanager
def serve_jupyter(app: str, root_dir: str | os.PathLike, *, timeout: float = 120,
                  extra_args: list[str] | tuple[str, ...] = (), log_dir: str | os.PathLike | None = None,
                  home: str | os.PathLike | None = None, env: dict[str, str] | None = None,
                  pythonpath: list[str | os.PathLike] | None = None,
                  user_settings: dict[str, dict] | None = None) -> Iterator[JupyterServer]:
    """Serve ``root_dir`` with JupyterLab 4 (``app="lab"``) or Notebook 7 (``app="notebook"``).

    Runs ``sys.executable -m jupyterlab`` / ``-m notebook`` on 127.0.0.1 and a free port, without a
    browser, token, password or XSRF check, and yields a :class:`JupyterServer` once ``/api``
    answers (``--allow-root`` is passed: CI runs as root). The user's own Jupyter settings never
    apply: ``JUPYTER_CONFIG_DIR``, ``JUPYTER_DATA_DIR``, ``JUPYTER_RUNTIME_DIR``,
    ``JUPYTERLAB_SETTINGS_DIR`` and ``JUPYTERLAB_WORKSPACES_DIR`` point into ``home`` (default: a
    fresh folder in ``log_dir``), so ``~/.jupyter``, the lab settings, workspaces and page_config of
    the user are not read. The environment's own paths (``sys.prefix/share/jupyter``, where
    ``jupyterlab_widgets`` puts the widget manager, and ``sys.prefix/etc/jupyter``, which enables the
    server extensions) stay on the search paths, and so do the user-site folders
    (``~/.local/share/jupyter``, ``~/.local/etc/jupyter``: where ``pip install --user`` puts lab
    extensions; Jupyter adds them regardless of these variables). ``user_settings`` (default
    :data:`JUPYTER_USER_SETTINGS`: no news, no update check, no toasts) is written there as the user's
    JupyterLab settings; the server also gets ``--LabApp.news_url=None`` and the never-checking
    update checker, so nothing is fetched from outside.

    Kernels run this interpreter (:func:`ensure_kernelspec`) with ``pythonpath`` (default: the
    repository root) first on ``PYTHONPATH``; ``env`` adds variables for the server and its kernels
    (kernels inherit the server's environment). Output goes to ``jupyter-<app>-<port>.log`` in
    ``log_dir`` (default: ``root_dir``'s parent); on exit the process tree (server and kernels) is
    terminated.
    """
    if app not in JUPYTER_APPS:
        raise ValueError(f"app must be one of {sorted(JUPYTER_APPS)}, not {app!r}")
    import json

    root_dir = Path(root_dir).resolve()
    log_dir = Path(log_dir) if log_dir is not None else root_dir.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix=f"jupyter-{app}-home-", dir=log_dir))
    dirs = {name: home / sub for name, sub in (
        ("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"))}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    for plugin, values in (JUPYTER_USER_SETTINGS if user_settings is None else user_settings).items():
        package, _, name = plugin.partition(":")
        target = dirs["JUPYTERLAB_SETTINGS_DIR"] / package / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values, indent=2))

    extra_env = env
    env = dict(os.environ)
    env.update(ensure_kernelspec())
    env.update({name: str(folder) for name, folder in dirs.items()})
    _finish_env(env, pythonpath, extra_env)

    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", JUPYTER_APPS[app][0],
            "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root_dir}",
            "--IdentityProvider.token=", "--PasswordIdentityProvider.hashed_password=",
            "--ServerApp.disable_check_xsrf=True",
            # (not --ServerApp.terminals_enabled=False: Notebook 7.6 then throws "Cannot read
            # properties of undefined (reading 'schema')" on every page load)
            "--ServerApp.allow_root=True",
            "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            *extra_args,
        ]

    server = _start_server(log_dir, f"jupyter-{app}-{{port}}.log", command, root_dir, env,
                           lambda popen, port, log_path, cmd: JupyterServer(popen, app, f"http://127.0.0.1:{port}/",
                                                                            port, root_dir, log_path, home, cmd),
                           _wait_jupyter, time.monotonic() + timeout)
    assert server is not None
    try:
        yield server
    finally:
        kill_tree(server.popen.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.popen.wait(timeout=10)


# ------------------------------------------------------------- a notebook page in JupyterLab / Notebook 7

#: Where a notebook shows a cell's traceback (an ``error`` output is drawn as stderr text, like a
#: warning, but holds "Traceback") or a widget it could not draw (ipywidgets writes "Error
#: displaying widget" into the output area when the widget manager lacks the model).
_JUPYTER_ERROR_OUTPUTS = (".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                          ":has-text('Traceback'), .jp-OutputArea-output:has-text('Error displaying widget')")


def _jupyter_kernels(server: JupyterServer) -> list[dict]:
    """The server's running kernels (``GET /api/kernels``), or ``[]`` when it does not answer."""
    import json
    try:
        with urllib.request.urlopen(server.url + "api/kernels", timeout=5) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError, ValueError):
        return []


def jupyter_kernel_processes(server: JupyterServer) -> list[psutil.Process]:
    """The kernel processes the server started (descendants whose command line names ipykernel)."""
    found = []
    with contextlib.suppress(psutil.Error):
        for p in psutil.Process(server.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any("ipykernel" in part for part in p.cmdline()):
                    found.append(p)
    return found


def _jupyter_failure(page, server: JupyterServer | None, what: str, why: str,
                     exc: BaseException | None = None) -> AssertionError:
    """An AssertionError telling what the notebook page shows, its errors and the server's log."""
    try:
        outputs = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output')]
            .map(e => (e.dataset.mimeType || '?') + ': ' + e.innerText.slice(0, 1500)).join('\\n---\\n')""")
        prompts = page.evaluate("""() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
            .map(e => e.innerText.trim()).join(' ')""")
    except Exception as err:  # noqa: BLE001 - diagnostics only
        outputs, prompts = f"(unavailable: {err})", "?"
    errors = "\n".join(getattr(page, "jupyter_errors", [])[-20:])
    log = f"\n--- server log tail ---\n{server.log_tail()}" if server is not None else ""
    hint = ""
    if re.search(r"text/plain: (VBox|HBox|Box|GridBox|Tab|Accordion|Output)\(", outputs):
        hint = ("\n(A widget was drawn as its text repr: the page has no widget manager. Is the "
                "@jupyter-widgets/jupyterlab-manager lab extension of jupyterlab_widgets on the data path "
                "(`python -m jupyter labextension list`) and not disabled?)")
    return AssertionError(f"{what}: {why}{hint}\n--- code cell prompts --- {prompts}\n--- cell outputs ---\n"
                          f"{outputs[-4000:]}\n--- page errors ---\n{errors}{log}")


def open_jupyter_notebook(browser, server: JupyterServer, path: str, *, timeout: float = 120,
                          viewport: dict | None = None):
    """Open ``path`` in JupyterLab / Notebook 7 and wait until its kernel is connected and idle.

    Ready means: the notebook's cells are drawn, the server reports a kernel that is ``idle`` with a
    websocket connection, and the notebook's toolbar execution indicator says ``idle`` too. (The
    indicator alone is not enough: it reads "idle" before any kernel exists, then "initializing",
    "connecting", "unknown", "idle".) Console errors, uncaught exceptions and failed requests are
    collected in ``page.jupyter_errors``.
    """
    page = browser.new_page(viewport=viewport or {"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("requestfailed", lambda req: errors.append(f"requestfailed: {req.url} ({req.failure})"))
    page.jupyter_errors = errors  # type: ignore[attr-defined]
    what = f"{server.app} did not open {path}"
    deadline = time.monotonic() + timeout
    try:
        page.goto(server.notebook_url(path), wait_until="commit", timeout=timeout * 1000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(state="visible", timeout=timeout * 1000)
    except Exception as exc:  # noqa: BLE001 - playwright's errors: report them with the log
        raise _jupyter_failure(page, server, what, f"no notebook cells drawn: {exc}", exc) from exc
    indicator = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator").first
    while True:
        kernels = _jupyter_kernels(server)
        connected = [k for k in kernels if k.get("execution_state") == "idle" and k.get("connections", 0) > 0]
        if connected and indicator.get_attribute("data-status") == "idle":
            break
        if server.popen.poll() is not None:
            raise _jupyter_failure(page, server, what, f"the server exited with code {server.popen.returncode}")
        if time.monotonic() > deadline:
            states = [(k.get("execution_state"), k.get("connections")) for k in kernels]
            raise _jupyter_failure(page, server, what, f"no idle connected kernel after {timeout:.0f} s "
                                   f"(kernels {states}, indicator {indicator.get_attribute('data-status')!r})")
        page.wait_for_timeout(200)
    page.set_default_timeout(30_000)
    return page


def run_all_cells(page, *, timeout: float = 30) -> None:
    """Run every cell the way a person does: the menu bar's Run > Run All Cells.

    Works in JupyterLab 4 and Notebook 7 (both use Lumino menus: the command is
    ``runmenu:run-all`` there, not ``notebook:run-all-cells``, so the item is found by its label).
    Returns once every code cell's prompt has left ``[ ]`` (queued ``[*]`` or numbered), i.e. the
    kernel has accepted the whole notebook; it does not wait for the cells to finish.
    """
    import re
    menu = page.locator(".lm-MenuBar-item").filter(has_text=re.compile(r"^\s*Run\s*$")).first
    item = page.locator(".lm-Menu .lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).first
    for attempt in range(3):  # a click landing while the app still lays out can leave the menu shut
        menu.click()
        try:
            item.wait_for(state="visible", timeout=5_000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError
            page.keyboard.press("Escape")
            if attempt == 2:
                raise
    item.click()
    page.wait_for_function("""() => {
        const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')];
        return prompts.length > 0 && prompts.every(p => /\\[(\\*|\\d+)\\]/.test(p.innerText));
    }""", timeout=timeout * 1000)


def wait_for_notebook_output(page, server: JupyterServer, ready: Callable | str, *, timeout: float = 120):
    """Wait until ``ready`` (a CSS selector or ``page -> Locator``) is visible in the notebook.

    Stops early, with the cells' outputs and the server's log in the message, when a cell shows a
    traceback, a widget cannot be displayed, or the server dies. Returns the (first) locator.
    """
    locator = (page.locator(ready) if isinstance(ready, str) else ready(page)).first
    what = f"the notebook did not show {ready if isinstance(ready, str) else locator}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            locator.wait_for(state="visible", timeout=1000)
            return locator
        except Exception as exc:  # noqa: BLE001 - playwright's TimeoutError: poll again
            if time.monotonic() > deadline:
                raise _jupyter_failure(page, server, what, f"not visible after {timeout:.0f} s", exc) from exc
            if server.popen.poll() is not None:
                raise _jupyter_failure(page, server, what,
                                       f"the server exited with code {server.popen.returncode}", exc) from exc
            if page.locator(_JUPYTER_ERROR_OUTPUTS).count():
                raise _jupyter_failure(page, server, what, "a cell shows an error", exc) from exc


#: Scroll the notebook to its top; return how many pixels its last cell reaches below the visible area.
_NOTEBOOK_OVERFLOW = """() => {
    const cells = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell');
    const last = cells[cells.length - 1];
    if (!last) return 0;
    let scroller = last.parentElement;
    while (scroller && scroller !== document.body && !(/(auto|scroll)/.test(getComputedStyle(scroller).overflowY)
            && scroller.scrollHeight > scroller.clientHeight + 1)) scroller = scroller.parentElement;
    if (scroller && scroller !== document.body) scroller.scrollTop = 0;
    document.scrollingElement.scrollTop = 0;
    const visible = scroller && scroller !== document.body ? scroller.getBoundingClientRect().bottom : window.innerHeight;
    return Math.max(0, Math.ceil(last.getBoundingClientRect().bottom - visible));
}"""


def jupyter_screenshot(page, path: str | os.PathLike, *, max_height: int = 16000) -> Path:
    """Screenshot JupyterLab / Notebook 7 with the whole notebook unrolled, from its first cell.

    The notebook scrolls inside the app (Lab 4: ``.jp-WindowedPanel-outer``), not the body, so
    ``full_page=True`` alone captures one screen: the notebook is scrolled to its top and the window
    grown until the last cell fits (the app lays itself out again on the resize; cells drawn late
    may grow the notebook, hence a few rounds), then the window is restored.
    """
    size = page.viewport_size or {"width": 1400, "height": 1000}
    height = size["height"]
    try:
        for _ in range(4):
            extra = page.evaluate(_NOTEBOOK_OVERFLOW)
            if extra <= 0 or height >= max_height:
                break
            height = int(min(height + extra + 24, max_height))
            page.set_viewport_size({"width": size["width"], "height": height})
            page.wait_for_timeout(400)  # Lumino relayouts on the window's resize event
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    return Path(path)


# --- The dashboard notebook, walked as a person does (shared by the dashboard's browser tests) -----

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07-dashboard.ipynb"
OFFLINE_NOISE = ("cdn.jsdelivr.net", "ERR_NAME_NOT_RESOLVED", "ERR_INTERNET_DISCONNECTED")

WATCH_PROGRESS = """() => {
    window.__progress = window.__progress || [];
    for (const bar of document.querySelectorAll('.astrocal-progress .progress-bar')) {
        if (bar.__watched) continue;
        bar.__watched = true;
        new MutationObserver(() => window.__progress.push(parseFloat(bar.style.width)))
            .observe(bar, {attributes: true, attributeFilter: ['style']});
    }
    window.__progress.length = 0;
}"""



class Walk:
    """The page, with the checks made after every action."""

    def __init__(self, page, shots: Path, expect, patience: float = 1.0):
        self.page, self.shots, self.expect = page, shots, expect
        self.patience = patience  # waits are multiplied by this (big frames take minutes a step)
        self.memory = None  # a KernelMemoryMonitor, once the kernel runs
        self.peak_so_far: dict[str, float] = {}
        self.peak_by_step: dict[str, float] = {}  # the peak since the previous mark, MiB
        self.images_seen = 0
        self.progress: dict[str, list[float]] = {}

    def body(self):
        return self.page.locator(".astrocal-dashboard")

    def no_errors(self, where: str) -> None:
        errors = self.page.locator(".astrocal-error")
        if errors.count():
            raise AssertionError(f"{where}: the dashboard shows an error: {errors.first.inner_text()}")
        text = self.body().inner_text()
        assert "<Figure size" not in text, f"{where}: a figure arrived as text, not as an image"
        assert "Traceback" not in text, where

    def images_loaded(self, where: str, at_least: int) -> int:
        images = self.body().locator("img.widget-image")
        self.page.wait_for_function(
            f"() => document.querySelectorAll('.astrocal-dashboard img.widget-image').length >= {at_least}",
            timeout=120_000 * self.patience)
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('.astrocal-dashboard img.widget-image')]"
            ".every(i => i.complete && i.naturalWidth > 100)", timeout=60_000 * self.patience)
        n = images.count()
        assert n >= at_least, f"{where}: {n} images, expected at least {at_least}"
        self.images_seen += n
        return n

    def click_and_watch(self, name: str, where: str, done, *, exact: bool = True) -> list[float]:
        """Click a button, record every width the progress bars show, wait for ``done``."""
        self.page.evaluate(WATCH_PROGRESS)
        self.page.get_by_role("button", name=name, exact=exact).click()
        done()
        self.page.wait_for_timeout(200)
        widths = self.page.evaluate("window.__progress.slice()")
        self.progress[f"{where}: {name}"] = widths
        self.no_errors(f"{where} after {name}")
        return widths

    def wait_text(self, text: str, timeout: float = 180_000) -> None:
        self.expect(self.body().get_by_text(text).first).to_be_visible(timeout=timeout * self.patience)

    def shot(self, name: str) -> None:
        full_screenshot(self.page, self.shots / f"{name}.png")
        self.mark(name)

    def mark(self, name: str) -> None:
        """Note the kernel's peak so far (the report shows at which step it was reached)."""
        if self.memory is not None:
            self.peak_by_step[name] = round(self.memory.window_peak_rss() / 2**20, 1)
            self.peak_so_far[name] = round(self.memory.peak_rss / 2**20, 1)

    def go(self, title: str) -> None:
        """Next or Back, step by step, to the step ``title``; no step passed shows an error."""
        step_to(self.body(), self.expect, title, timeout=60_000 * self.patience, each=self.no_errors)

    def integrate_and_save_each_set(self, where: str, plots: int, sets: list[int] | None = None) -> None:
        select = self.body().get_by_label("Set", exact=True)
        options = select.locator("option").count()
        for k in (range(options) if sets is None else sets):
            if k:  # a new set: its plots are cleared before it is integrated (wait for the kernel's reply)
                select.select_option(index=k)
                self.page.wait_for_function(
                    f"() => document.querySelectorAll('.astrocal-dashboard img.widget-image').length < {plots}",
                    timeout=30_000 * self.patience)
            widths = self.click_and_watch("Integrate", f"{where} set {k}", lambda: self.page.wait_for_function(
                f"() => document.querySelectorAll('.astrocal-dashboard img.widget-image').length >= {plots}",
                timeout=180_000 * self.patience))
            moving = [w for w in widths if 0 < w < 100]
            assert moving, f"{where} set {k}: the progress bar never showed an intermediate value: {widths}"
            self.images_loaded(f"{where} set {k}", plots)
            save = self.page.get_by_role("button", name="Save", exact=True)
            self.expect(save).to_be_enabled(timeout=5_000 * self.patience)
            save.click()
            self.wait_text("Saved /")
            self.no_errors(f"{where} set {k} after Save")
