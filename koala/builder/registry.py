"""The config registry: the YAML files of ``koala/builder_configs/`` turned into config specs.

One YAML file per task declares its subsets (source layout, metadata files, field names, label
scheme, noise) and the name of the config that unites them. From it come, per subset, a clean
config (``sqa_click``) and, where the subset has noisy audio (published, or this project's
recipe), a ``_noisy`` config (``sqa_click_noisy``); and the union config (``sqa``, with a
``subset`` column) plus its ``_noisy`` variant when every subset has one.

The folder is found, in order, from an explicit path, ``$KOALA_BUILDER_CONFIGS``, or inside the
``koala`` package (``koala/builder_configs/``, shipped in the wheel).
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from koala.audio import NOISE_TYPES
from koala.tasks import BUILTIN_TASKS, find_task, load_task_module, task_names

__all__ = [
    "TASKS",
    "ConfigSpec",
    "SubsetSpec",
    "UnknownConfigError",
    "config_dir",
    "get_config",
    "load_registry",
]

TASKS = BUILTIN_TASKS
SOURCES = ("koala", "etri", "zeroth", "common_voice", "ksponspeech")
SUBSET_KEYS = {
    "name",
    "config",
    "description",
    "licence",
    "homepage",
    "source",
    "clean",
    "noisy",
    "search",
    "fallback",
    "id_from",
    "fields",
    "labels",
    "num_choices",
    "tsv",
    "trn",
    "domain",
}
FILE_KEYS = {"task", "task_module", "description", "union", "subsets", "defaults"}


class UnknownConfigError(ValueError):
    """A config name the registry does not know; the message lists close matches."""


@dataclass(frozen=True)
class SubsetSpec:
    """One published set, as declared in ``koala/builder_configs/<task>.yaml``."""

    name: str
    config: str
    task: str
    source: str
    description: str = ""
    licence: str = ""
    homepage: str = ""
    domain: str = ""
    clean: str | None = None
    noisy_file: str | None = None
    recipe: Mapping[str, Any] | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    labels: str | None = None
    num_choices: int | None = None
    search: tuple[str, ...] = ()
    fallback: str | None = None
    id_from: str = "index"
    tsv: str | None = None
    trn: str | None = None
    declared_in: str = ""

    @property
    def noisy_kind(self) -> str:
        """``published`` (the authors' noisy audio), ``recipe`` (this project's) or ``none``."""
        if self.noisy_file:
            return "published"
        if self.recipe:
            return "recipe"
        return "none"

    def field_name(self, key: str) -> str:
        """The metadata field that holds ``key`` (the key itself when not renamed)."""
        return self.fields.get(key, key)


@dataclass(frozen=True)
class ConfigSpec:
    """A builder config: a task, the subsets it reads and the noise condition."""

    name: str
    task: str
    noise: str
    subsets: tuple[SubsetSpec, ...]
    description: str = ""
    union: bool = False

    @property
    def noise_sources(self) -> tuple[str, ...]:
        """Per subset, where the noisy audio comes from (``clean`` configs: ``none``)."""
        if self.noise == "clean":
            return tuple("none" for _ in self.subsets)
        return tuple(s.noisy_kind for s in self.subsets)


def config_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The ``builder_configs`` folder (see the module docstring for the search order)."""
    env = os.environ.get("KOALA_BUILDER_CONFIGS") or None
    return _config_dir(None if path is None else os.fspath(path), env)


@functools.lru_cache(maxsize=32)
def _config_dir(path: str | None, env: str | None) -> Path:
    """:func:`config_dir`, looked up once per (``path``, ``$KOALA_BUILDER_CONFIGS``): the
    run plans each row through the registry, and resolving the folder and listing it cost
    0.18 ms a time. A failure is not cached."""
    candidates = []
    if path is not None:
        candidates.append(Path(path))
    if env:
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parent.parent / "builder_configs")
    for c in candidates:
        if c.is_dir() and any(c.glob("*.yaml")):
            return c
    raise FileNotFoundError(
        f"no builder_configs/*.yaml found (looked in {[str(c) for c in candidates]}); "
        "set KOALA_BUILDER_CONFIGS to the folder or reinstall koala-bench"
    )


def _bad(file: Path, problem: str) -> ValueError:
    return ValueError(f"{file}: {problem}")


def _subset(
    file: Path, task: str, raw: Mapping[str, Any], defaults: Mapping[str, Any]
) -> SubsetSpec:
    if not isinstance(raw, Mapping):
        raise _bad(file, f"each subset must be a mapping, got {raw!r}")
    merged: dict[str, Any] = {**defaults, **raw}
    merged["fields"] = {**defaults.get("fields", {}), **raw.get("fields", {})}
    unknown = set(merged) - SUBSET_KEYS
    if unknown:
        raise _bad(
            file,
            f"subset {raw.get('name')!r}: unknown keys {sorted(unknown)}; "
            f"allowed: {sorted(SUBSET_KEYS)}",
        )
    for key in ("name", "config", "source"):
        if not isinstance(merged.get(key), str) or not merged[key]:
            raise _bad(file, f"subset {raw.get('name')!r}: {key!r} must be a non-empty string")
    if merged["source"] not in SOURCES:
        raise _bad(
            file, f"subset {merged['name']!r}: source {merged['source']!r} is not one of {SOURCES}"
        )
    noisy = merged.get("noisy")
    noisy_file, recipe = None, None
    if isinstance(noisy, str):
        noisy_file = noisy
    elif isinstance(noisy, Mapping) and isinstance(noisy.get("recipe"), Mapping):
        recipe = dict(noisy["recipe"])
        if recipe.get("noise_type") not in NOISE_TYPES or not isinstance(
            recipe.get("snr_db"), int | float
        ):
            raise _bad(
                file,
                f"subset {merged['name']!r}: noisy.recipe needs noise_type in "
                f"{NOISE_TYPES} and a numeric snr_db, got {recipe}",
            )
    elif noisy is not None:
        raise _bad(
            file,
            f"subset {merged['name']!r}: noisy must be a metadata path or "
            f"{{recipe: {{noise_type, snr_db}}}}, got {noisy!r}",
        )
    if merged.get("labels") not in (None, "letters", "numbers"):
        raise _bad(file, f"subset {merged['name']!r}: labels must be 'letters' or 'numbers'")
    return SubsetSpec(
        name=merged["name"],
        config=merged["config"],
        task=task,
        source=merged["source"],
        description=str(merged.get("description", "")),
        licence=str(merged.get("licence", "")),
        homepage=str(merged.get("homepage", "")),
        domain=str(merged.get("domain", "")),
        clean=merged.get("clean"),
        noisy_file=noisy_file,
        recipe=recipe,
        fields={str(k): str(v) for k, v in merged["fields"].items()},
        labels=merged.get("labels"),
        num_choices=merged.get("num_choices"),
        search=tuple(merged.get("search", ())),
        fallback=merged.get("fallback"),
        id_from=str(merged.get("id_from", "index")),
        tsv=merged.get("tsv"),
        trn=merged.get("trn"),
        declared_in=file.name,
    )


def _read_file(file: Path) -> list[ConfigSpec]:
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise _bad(file, "must be a YAML mapping with task, subsets")
    unknown = set(data) - FILE_KEYS
    if unknown:
        raise _bad(file, f"unknown top-level keys {sorted(unknown)}; allowed: {sorted(FILE_KEYS)}")
    task = data.get("task")
    if data.get("task_module"):
        try:
            module_task = load_task_module(str(data["task_module"]), file.parent)
        except Exception as exc:
            raise _bad(file, f"task_module {data['task_module']!r}: {exc}") from None
        if module_task.name != task:
            raise _bad(file, f"task_module defines task {module_task.name!r}, not {task!r}")
    if find_task(task) is None if task not in TASKS else False:
        raise _bad(file, f"task {task!r} is not one of {task_names()} (or give task_module)")
    subsets_raw = data.get("subsets")
    if not isinstance(subsets_raw, list) or not subsets_raw:
        raise _bad(file, "subsets must be a non-empty list")
    defaults = data.get("defaults") or {}
    subsets = tuple(_subset(file, task, s, defaults) for s in subsets_raw)
    description = " ".join(str(data.get("description", "")).split())
    out: list[ConfigSpec] = []
    for s in subsets:
        desc = f"{description} Subset {s.name}: {s.description}".strip()
        out.append(ConfigSpec(s.config, task, "clean", (s,), desc))
        if s.noisy_kind != "none":
            how = (
                "the authors' published noisy audio"
                if s.noisy_kind == "published"
                else f"this project's noise recipe ({s.recipe['noise_type']} noise at "  # type: ignore[index]
                f"{s.recipe['snr_db']} dB SNR, seeded per row id)"  # type: ignore[index]
            )
            out.append(
                ConfigSpec(f"{s.config}_noisy", task, "noisy", (s,), f"{desc} Noisy: {how}.")
            )
    union = data.get("union")
    if union:
        names = ", ".join(s.name for s in subsets)
        out.append(
            ConfigSpec(union, task, "clean", subsets, f"{description} Subsets: {names}.", True)
        )
        if all(s.noisy_kind != "none" for s in subsets):
            out.append(
                ConfigSpec(
                    f"{union}_noisy",
                    task,
                    "noisy",
                    subsets,
                    f"{description} Subsets: {names}; noisy audio.",
                    True,
                )
            )
    return out


@functools.lru_cache(maxsize=8)
def _load(folder: str) -> dict[str, ConfigSpec]:
    registry: dict[str, ConfigSpec] = {}
    for file in sorted(Path(folder).glob("*.yaml")):
        for spec in _read_file(file):
            if spec.name in registry:
                raise _bad(file, f"config {spec.name!r} is declared twice")
            registry[spec.name] = spec
    return registry


def load_registry(path: str | os.PathLike[str] | None = None) -> dict[str, ConfigSpec]:
    """Every config, by name, in declaration order (files sorted by name)."""
    return dict(_load(str(config_dir(path))))


def get_config(name: str, path: str | os.PathLike[str] | None = None) -> ConfigSpec:
    """The spec of config ``name``; :class:`UnknownConfigError` (with suggestions) otherwise."""
    registry = load_registry(path)
    if name in registry:
        return registry[name]
    close = difflib.get_close_matches(name, list(registry), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise UnknownConfigError(
        f"unknown config {name!r}: {hint}available configs: {', '.join(registry)}"
    )
