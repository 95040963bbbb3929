"""The package version, in one place: pyproject.toml reads it (``dynamic = ["version"]``), and
``trainset.__version__`` is this constant, so a rule job records it without scanning every
installed distribution through importlib.metadata (~55 ms of each of the workflow's ~80 jobs)."""

__version__ = "0.1.0"
