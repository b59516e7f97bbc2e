"""The versions: of the ``errortaxa`` distribution (pyproject.toml reads it from here), and of the
engine's decisions (part of every compiled taxonomy's content hash and of every summary)."""

__version__ = "0.1.0"
ENGINE_VERSION = "0.1.0"
