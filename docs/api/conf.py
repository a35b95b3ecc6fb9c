"""Sphinx configuration of augcore's API reference (built by `bash scripts/run.sh docs`)."""
import os
import sys

# the checkout's augcore (with its compiled extension built in place by scripts/run.sh)
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

project = "augcore"
author = "augcore maintainers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# torch.nn.Module docstrings (forward, apply, ...) belong to torch and cite its own labels
autodoc_inherit_docstrings = False
# the docstrings use Google-style "Args:" sections and reST inline markup
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
