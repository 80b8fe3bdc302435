"""Sphinx configuration for the em_sklearn documentation.

Build from the repository root with warnings as errors:

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery (``examples/plot_*.py``) is run by sphinx-gallery during the build
and its figures are written to ``docs/auto_examples``. The build needs no
network: intersphinx links to Python, NumPy and scikit-learn are only made
when ``EM_SKLEARN_DOCS_INTERSPHINX=1`` is set (it downloads their inventories).
"""

import os
import warnings

import em_sklearn

project = "em_sklearn"
author = "em_sklearn developers"
copyright = "em_sklearn developers"
release = em_sklearn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

root_doc = "index"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
templates_path = ["_templates"]

# -- API reference -------------------------------------------------------------
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Document the estimators' own methods and those of em_sklearn's private base
# class (score, score_samples), not the ones scikit-learn's mixins provide
# (set_output, get_params, ...): their docstrings link into scikit-learn's user
# guide, which is not part of this site. The user guide describes set_output.
autodoc_default_options = {
    "members": True,
    "inherited-members": "BaseEstimator,TransformerMixin,ClusterMixin,"
    "ClassNamePrefixFeaturesOutMixin,_SetOutputMixin,_MetadataRequester",
    "member-order": "bysource",
}

# -- Intersphinx (opt-in: it needs the network) ----------------------------------
if os.environ.get("EM_SKLEARN_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
    }

# -- Gallery ---------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    # Each API page ends with the examples that use the object.
    "doc_module": ("em_sklearn",),
    "reference_url": {"em_sklearn": None},
    "backreferences_dir": "generated/backrefs",
    "inspect_global_variables": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    # Fail the build, not just warn, when an example raises.
    "only_warn_on_example_error": False,
    "abort_on_example_error": False,
}

# Examples run with the Agg backend; a figure-count warning would only be noise.
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")

# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"em_sklearn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []
