"""The dataset builder's library: row schemas, the config registry and row generation.

``koala_bench.py`` (the ``datasets`` builder) and ``koala.export`` are thin layers over this:

* :mod:`koala.builder.features`: the ``Features`` of each task's rows;
* :mod:`koala.builder.registry`: the configs declared in ``koala/builder_configs/*.yaml``;
* :mod:`koala.builder.rows`: a published record -> the task's typed columns;
* :mod:`koala.builder.labels`: choices and gold answers, with the repairs the data needs;
* :mod:`koala.builder.generate`: rows with their audio, noise, and bad-input handling.
"""

__all__ = [
    "TASKS",
    "BuildOptions",
    "BuildReport",
    "ConfigSpec",
    "SubsetSpec",
    "UnknownConfigError",
    "features_for",
    "generate_rows",
    "get_config",
    "load_registry",
]

_HOME = {
    "TASKS": "koala.builder.registry",
    "ConfigSpec": "koala.builder.registry",
    "SubsetSpec": "koala.builder.registry",
    "UnknownConfigError": "koala.builder.registry",
    "get_config": "koala.builder.registry",
    "load_registry": "koala.builder.registry",
    "features_for": "koala.builder.features",
    "BuildOptions": "koala.builder.generate",
    "BuildReport": "koala.builder.generate",
    "generate_rows": "koala.builder.generate",
}


def __getattr__(name: str) -> object:
    """Load the submodule that defines ``name`` on first use (``datasets`` is imported only by
    :mod:`koala.builder.features`, so the CLI's ``--help`` stays fast)."""
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'koala.builder' has no attribute {name!r}")
