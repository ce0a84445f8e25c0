"""The one place the snnp version is defined (read by setuptools and by ``snnp.__version__``)."""
__version__ = "0.2.0"
