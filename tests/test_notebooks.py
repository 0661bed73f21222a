"""The notebooks run top to bottom on the simulated session (what Binder users open first)."""
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    # The kernel runs in tmp_path (resources' path below), where the notebooks write their night;
    # anything they would put in the temporary folder goes there too and is removed with it.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("ASTROCAL_FRAMES", raising=False)
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    if path.name == "dashboard.ipynb":
        # The last cell displays the dashboard: a widget view (what Voila and Jupyter draw).
        views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert len(views) == 1
        assert list(tmp_path.glob("astrocal-dashboard-*/night/*/LIGHT/*.fits"))  # the simulated night
        return
    text = "".join(o.get("text", "") for o in outputs)
    assert "rejected" in text
