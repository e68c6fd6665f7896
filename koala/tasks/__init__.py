"""The tasks of the benchmark, one module each: ``asr``, ``st``, ``sqa``, ``sif``, ``sca_qa``,
``pa_qa`` (each a :class:`~koala.tasks.base.Task` named ``TASK``).

A config's task comes from the builder registry (``koala/builder_configs/<file>.yaml`` names
it); nothing guesses it from a config name. A task of one's own is a Python file defining
``TASK`` (a :class:`Task`) named by a builder-config YAML (``task: toy`` and
``task_module: toy.py``, a path relative to the YAML file or a dotted module name): reading the
registry registers it, and from then on the exporter, runner, scorer and reporter treat it as
any other task.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from koala.tasks.base import Task, TaskPlot

__all__ = [
    "BUILTIN_TASKS",
    "Task",
    "TaskPlot",
    "all_tasks",
    "config_task",
    "find_task",
    "get_task",
    "load_task_module",
    "register_task",
    "task_names",
]

BUILTIN_TASKS: tuple[str, ...] = ("asr", "st", "sqa", "sif", "sca_qa", "pa_qa")
_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Make ``task`` known by its name (a second task of the same name is an error)."""
    if not isinstance(task, Task) or not task.name:
        raise TypeError(f"{task!r}: a task is a koala.tasks.Task with a name")
    old = _TASKS.get(task.name)
    if old is not None and type(old) is not type(task):
        raise ValueError(f"task {task.name!r} is defined twice ({type(old)} and {type(task)})")
    _TASKS[task.name] = task
    return task


def _builtin(name: str) -> Task | None:
    if name not in BUILTIN_TASKS:
        return None
    if name not in _TASKS:
        register_task(importlib.import_module(f"koala.tasks.{name}").TASK)
    return _TASKS[name]


def find_task(name: object) -> Task | None:
    """The task called ``name``, or ``None``: a built-in one, one already registered, or one
    a builder-config YAML of the registry declares with its ``task_module``."""
    if not isinstance(name, str):
        return None
    task = _builtin(name) or _TASKS.get(name)
    if task is None:
        from koala.builder.registry import load_registry

        try:
            load_registry()  # imports the task modules the YAML files name
        except Exception:
            return None
        task = _TASKS.get(name)
    return task


def get_task(name: str) -> Task:
    """The task called ``name``; ``ValueError`` naming the known tasks otherwise."""
    task = find_task(name)
    if task is None:
        raise ValueError(f"unknown task {name!r}; known tasks: {list(task_names())}")
    return task


def all_tasks() -> list[Task]:
    """Every known task (built-in and registered), in report order."""
    for name in BUILTIN_TASKS:
        _builtin(name)
    return sorted(_TASKS.values(), key=lambda t: (t.order, t.name))


def task_names() -> tuple[str, ...]:
    return tuple(t.name for t in all_tasks())


def config_task(config: str) -> Task:
    """The task of ``config``, as the builder registry declares it."""
    from koala.builder.registry import get_config

    return get_task(get_config(config).task)


def load_task_module(ref: str, base: Path | None = None) -> Task:
    """Import the module ``ref`` (a ``.py`` path, relative to ``base``, or a dotted module
    name), register its ``TASK`` and return it."""
    if ref.endswith(".py"):
        path = Path(ref) if base is None else (base / ref)
        path = path.resolve()
        name = f"koala_task_{path.stem}_{abs(hash(str(path))) % 10**8}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None or not path.is_file():
                raise FileNotFoundError(f"task module {path} not found")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(ref)
    task = getattr(module, "TASK", None)
    if not isinstance(task, Task):
        raise TypeError(f"task module {ref}: defines no TASK (a koala.tasks.Task)")
    return register_task(task)
