"""Sphinx configuration for the em_sklearn documentation (stub)."""

import em_sklearn

project = "em_sklearn"
author = "em_sklearn developers"
copyright = "em_sklearn developers"
release = em_sklearn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False

# The estimators' docstrings link to scikit-learn's glossary (:term:`fit`) and API.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
}

root_doc = "index"
exclude_patterns = ["_build"]

html_theme = "pydata_sphinx_theme"
