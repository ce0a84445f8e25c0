"""Sphinx configuration of snnp's documentation.

Build (warnings are errors), from the repository root, with snnp installed and the docs extra::

    pip install ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

autodoc imports ``snnp``, which needs the compiled kernels.  A source checkout without them
(``snnp/_kernels*.so``) would shadow the installed package, so this file then takes the
repository root off ``sys.path``: the installed, compiled snnp is documented.  With kernels
built in place (``python setup.py build_ext --inplace``) the checkout itself is documented.
Nothing here needs the network.
"""
import glob
import inspect
import os
import sys

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not (glob.glob(os.path.join(_root, "snnp", "_kernels*.so"))
        or glob.glob(os.path.join(_root, "snnp", "_kernels*.pyd"))):
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _root]

import snnp  # noqa: E402  (after the path fix above)

project = "snnp"
author = "snnp developers"
copyright = "snnp developers"
release = snnp.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = []

# -- markdown pages (MyST) ----------------------------------------------------------------------
myst_heading_anchors = 3      # "page.md#a-heading" links resolve

# -- API reference ------------------------------------------------------------------------------
# members are listed per entry (``:members:``), so each entry can carry its example
autodoc_default_options = {
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"
autodoc_class_signature = "mixed"
autoclass_content = "both"
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False
add_module_names = False
python_display_short_literal_types = True

# the examples (``.. testcode::`` blocks of the reference) run with ``-b doctest``
doctest_global_setup = """
import os, tempfile
import numpy as np
import snnp
from ase.build import bulk
snnp.set_num_threads(1)
_docs_cwd = os.getcwd()
_docs_tmp = tempfile.TemporaryDirectory()
os.chdir(_docs_tmp.name)          # the examples write their files here
"""
doctest_global_cleanup = """
os.chdir(_docs_cwd)
_docs_tmp.cleanup()
"""
doctest_test_doctest_blocks = ""

html_theme = "alabaster"
html_title = f"snnp {release}"
html_static_path = []
html_theme_options = {"description": "spline-based interatomic potentials",
                      "fixed_sidebar": True}


# -- every public name is documented ------------------------------------------------------------
#: modules whose public names (``__all__``) the reference must show
PUBLIC_MODULES = ["snnp", "snnp.training", "snnp.ladder", "snnp.io", "snnp.io.lammps_snnp",
                  "snnp.io.schema", "snnp.coverage", "snnp.datasets", "snnp.data",
                  "snnp.calculator", "snnp.core", "snnp.plotting", "snnp.curves",
                  "snnp.splines", "snnp.filters", "snnp.embedding", "snnp.neighbors",
                  "snnp.backends", "snnp.backends.gpu", "snnp.fitlog", "snnp.config",
                  "snnp.formatting", "snnp.probes"]

_documented = set()


def _collect(app, what, name, obj, options, lines):
    _documented.add(name)
    _documented.add(id(obj))


def _public(modname):
    import importlib
    mod = importlib.import_module(modname)
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, v in vars(mod).items() if not n.startswith("_")
                 and (inspect.isfunction(v) or inspect.isclass(v))
                 and getattr(v, "__module__", None) == modname]
    return mod, names


def _check_public(app, exception):
    """Warn (an error under -W) about a public name the reference leaves out."""
    if exception is not None or app.builder.name not in ("html", "dirhtml"):
        return
    from sphinx.util import logging
    log = logging.getLogger("snnp.docs")
    for modname in PUBLIC_MODULES:
        mod, names = _public(modname)
        for n in names:
            if n.startswith("__"):
                continue
            obj = getattr(mod, n)
            if f"{modname}.{n}" in _documented or (not isinstance(obj, (int, float, str, tuple))
                                                   and id(obj) in _documented):
                continue
            log.warning("public name %s.%s is not in the API reference (docs/api*.rst)",
                        modname, n)


def _has_example(node):
    """A code block in ``node``, not counting those of nested entries (a class's methods)."""
    from docutils import nodes
    from sphinx import addnodes
    for child in node.children:
        if isinstance(child, addnodes.desc):
            continue
        if isinstance(child, (nodes.literal_block, nodes.doctest_block)) or (
                isinstance(child, nodes.Element) and _has_example(child)):
            return True
    return False


def _check_examples(app, doctree, docname):
    """Warn (an error under -W) about a function or class entry without an example."""
    from sphinx import addnodes
    from sphinx.util import logging
    log = logging.getLogger("snnp.docs")
    for desc in doctree.findall(addnodes.desc):
        if desc.get("domain") != "py" or desc.get("objtype") not in ("function", "class",
                                                                      "exception"):
            continue
        sig = next(iter(desc.findall(addnodes.desc_signature)), None)
        name = sig.get("fullname", "?") if sig is not None else "?"
        module = sig.get("module", "") if sig is not None else ""
        content = next((c for c in desc.children if isinstance(c, addnodes.desc_content)), None)
        if content is None or not _has_example(content):
            log.warning("%s.%s has no example (add a testcode block after its entry)",
                        module, name, location=desc)


def setup(app):
    app.connect("autodoc-process-docstring", _collect)
    app.connect("doctree-resolved", _check_examples)
    app.connect("build-finished", _check_public)
