"""Sphinx configuration: myst-nb for the markdown pages and executed notebooks, numpydoc for the API."""
project = "astrocal-widgets"
author = "astrocal-widgets developers"
extensions = ["myst_nb", "numpydoc", "sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.intersphinx"]
autosummary_generate = True
numpydoc_show_class_members = False
nb_execution_mode = "cache"
nb_execution_timeout = 600
html_theme = "pydata_sphinx_theme"
exclude_patterns = ["_build"]
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "xarray": ("https://docs.xarray.dev/en/stable", None),
    "astropy": ("https://docs.astropy.org/en/stable", None),
}
