"""Sphinx configuration of the spikelut documentation (``sphinx-build -W -b html docs OUT``).

The guides are Markdown (MyST); the API reference and every formula, constant and device
figure the guides quote come from the code itself: autodoc for docstrings, and the
directives of ``_ext/spikelut_docs.py`` for the command line's help and the tables of
targets and boards. ``tests/test_docs.py`` builds the site with warnings as errors, runs
its doctests and its ``console`` examples.
"""

import os
import sys
from importlib.metadata import version as _version

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

project = "spikelut"
author = "the spikelut authors"
copyright = "the spikelut authors, BSD-2-Clause"
release = _version("spikelut")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "spikelut_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# headings of the Markdown pages get anchors, so a guide can link to a section of another
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"

# every document's doctests run in a temporary directory of their own, never in the repo,
# and the working directory is restored after them (the suite builds in-process)
doctest_global_setup = """
import os as _os, tempfile as _tempfile
_docs_cwd = _os.getcwd()
_docs_tmp = _tempfile.TemporaryDirectory(prefix="spikelut-doctest-")
_os.chdir(_docs_tmp.name)
"""
doctest_global_cleanup = """
_os.chdir(_docs_cwd)
_docs_tmp.cleanup()
"""

html_theme = "alabaster"
html_title = f"spikelut {release}"
html_static_path = []
