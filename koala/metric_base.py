"""The base class of this project's ``evaluate`` modules: each module declares, the base does.

A module script (``metrics/<name>/<name>.py``) is a few declarations on a
:class:`KoalaMetric` subclass::

    class SpeechContextFaithfulness(metric_base.KoalaMetric):
        scorer = staticmethod(speech_context_faithfulness)  # a koala.scoring function
        description = _DESCRIPTION
        kwargs_description = _KWARGS_DESCRIPTION
        features = {"predictions": "string", "references": "string"}  # or a list of dicts
        required = ("text_predictions", "text_references")
        missing_message = "scf needs text_predictions= ..."

and the base builds ``_info`` (``evaluate.MetricInfo`` with :data:`KOALA_CITATION`) and
``_compute``: it calls ``scorer`` with the inputs and every option by keyword. An option the
scorer does not take is a ``TypeError`` naming the module and the options it accepts, and a
``required`` option left out (or ``None``/``""``) a ``ValueError``, both before anything is
scored or cached. A module that reshapes results overrides ``_compute`` and calls ``super()``.
Scripts import the module (``from koala import metric_base``), never the class itself:
``evaluate`` loads the first metric class it finds in the script's namespace.

``evaluate.Metric.compute(predictions=..., references=...)`` stores the inputs in an Arrow
cache file and reads them back before scoring. That round trip exists to gather predictions
across processes (``num_process > 1``) and to accumulate ``add_batch`` calls; for a single
process handing over whole lists it only costs time (for ``korean_cer`` it was two thirds of
the total: ``datasets`` encodes every example in Python). :class:`KoalaMetric` skips it in exactly
that case and otherwise defers to evaluate. Inputs are validated either way by the scoring
functions, which name the argument and index of a bad item.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import datasets
import evaluate
from datasets.utils.py_utils import temp_seed

__all__ = ["KOALA_CITATION", "KoalaMetric"]

# The benchmark's citation, shared by every module's ``MetricInfo``.
KOALA_CITATION = """\
@misc{koalabench,
  title = {KoALa-Bench: Evaluating Large Audio Language Models on Korean Speech Understanding
           and Faithfulness},
  note  = {Benchmark and published evaluation code by SCAI Lab}
}
"""

# Declarations that ``evaluate`` also reads as properties of the module's ``MetricInfo``
# (``metric.features`` ...): __init_subclass__ moves them out of the class into ``_spec``.
_INFO_FIELDS = ("description", "kwargs_description", "citation", "features", "reference_urls")
_DEFAULT_SPEC: dict[str, Any] = {
    "description": "",
    "kwargs_description": "",
    "citation": KOALA_CITATION,
    "features": {"predictions": "string", "references": "string"},
    "reference_urls": (),
}


def _feature(spec: Any) -> Any:
    """``"string"`` -> ``Value("string")``, ``["float64"]`` -> ``Sequence(Value("float64"))``;
    a ``datasets`` feature is kept as it is."""
    if isinstance(spec, str):
        return datasets.Value(spec)
    if isinstance(spec, list) and len(spec) == 1:
        return datasets.Sequence(_feature(spec[0]))
    return spec


def _features(spec: Mapping[str, Any]) -> datasets.Features:
    return datasets.Features({name: _feature(kind) for name, kind in spec.items()})


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value)


class KoalaMetric(evaluate.Metric):
    """``evaluate.Metric`` defined by declarations (see the module docstring), with a direct
    path for single-process, whole-list ``compute``.

    Declarations: ``scorer`` (``staticmethod`` of a ``koala.scoring`` function),
    ``description``, ``kwargs_description``, ``citation`` (default :data:`KOALA_CITATION`),
    ``features`` (input name -> ``datasets`` type name, or a list of such dicts; default
    string ``predictions`` and ``references``), ``reference_urls``, ``rename`` (input name ->
    the scorer's parameter, when they differ), ``required`` and ``missing_message`` (options
    that must be given, and the ``ValueError`` text), ``no_references_message`` (the
    ``ValueError`` text when a module without a ``references`` input is given one).
    """

    scorer: ClassVar[Callable[..., Any]]
    rename: ClassVar[Mapping[str, str]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    missing_message: ClassVar[str | None] = None
    no_references_message: ClassVar[str | None] = None
    _spec: ClassVar[dict[str, Any]] = _DEFAULT_SPEC
    _options: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = dict(cls._spec)
        for name in _INFO_FIELDS:
            if name in cls.__dict__:
                spec[name] = cls.__dict__[name]
                delattr(cls, name)  # evaluate's property of the same name reads the MetricInfo
        cls._spec = spec
        cls.__doc__ = spec["description"] + spec["kwargs_description"] + (cls.__doc__ or "")
        if getattr(cls, "scorer", None) is not None:
            inputs = {cls.rename.get(name, name) for name in cls._input_names()}
            params = inspect.signature(cls.scorer).parameters.values()
            kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            cls._options = frozenset(p.name for p in params if p.kind in kinds) - inputs

    @classmethod
    def _input_names(cls) -> list[str]:
        features = cls._spec["features"]
        return list(features[0] if isinstance(features, list) else features)

    @classmethod
    def module_name(cls) -> str:
        """The module's name: its script's file name (``scf`` for ``.../scf.py``)."""
        return cls.__module__.rsplit(".", 1)[-1]

    def _info(self) -> evaluate.MetricInfo:
        spec = self._spec
        features = spec["features"]
        return evaluate.MetricInfo(
            description=spec["description"],
            citation=spec["citation"],
            inputs_description=spec["kwargs_description"],
            features=[_features(f) for f in features]
            if isinstance(features, list)
            else _features(features),
            reference_urls=list(spec["reference_urls"]),
        )

    def _check_options(self, options: Mapping[str, Any]) -> None:
        """``TypeError`` for an option the scorer does not take, ``ValueError`` for a
        ``required`` one that is missing. A subclass without a ``scorer`` (its own ``_info``
        and ``_compute``, as module scripts installed by older versions have) is not checked."""
        if getattr(self, "scorer", None) is None:
            return
        inputs = set(self._input_names())
        unknown = sorted(set(options) - self._options - inputs)
        if unknown:
            raise TypeError(
                f"{self.module_name()} got unknown keyword argument(s) "
                f"{', '.join(unknown)}; it accepts: {', '.join(sorted(self._options))}"
            )
        missing = [name for name in self.required if _missing(options.get(name))]
        if missing:
            raise ValueError(
                self.missing_message
                or f"{self.module_name()} needs {', '.join(f'{m}=' for m in missing)}"
            )

    def _refuse_references(self, references: Any) -> None:
        if references is not None and "references" not in self._input_names():
            raise ValueError(
                self.no_references_message
                or f"{self.module_name()} takes no `references`: its inputs are "
                + ", ".join(self._input_names())
            )

    def _compute(self, **kwargs: Any) -> Any:
        """``scorer(**kwargs)``, inputs passed under the scorer's names (``rename``)."""
        return self.scorer(**{self.rename.get(k, k): v for k, v in kwargs.items()})

    def compute(
        self, *, predictions: Any = None, references: Any = None, **kwargs: Any
    ) -> dict[str, Any] | None:
        """Score ``predictions`` against ``references``; keyword arguments are the metric's
        options (documented below)."""
        self._refuse_references(references)
        self._check_options(kwargs)
        direct = (
            predictions is not None
            and references is not None
            and self.num_process == 1
            and getattr(self, "writer", None) is None  # nothing accumulated by add_batch
            and set(self._feature_names()) == {"predictions", "references"}
        )
        if not direct:  # evaluate ignores a `references` that is not an input (None here)
            return super().compute(predictions=predictions, references=references, **kwargs)
        if len(predictions) != len(references):
            raise ValueError(
                f"Mismatch in the number of predictions ({len(predictions)}) and references "
                f"({len(references)})"
            )
        with temp_seed(self.seed):
            return self._compute(
                predictions=list(predictions), references=list(references), **kwargs
            )

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add a batch of inputs (``predictions`` and the module's other inputs)."""
        self._refuse_references(references)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Add one item (``prediction`` and the module's other inputs)."""
        self._refuse_references(reference)
        return super().add(prediction=prediction, reference=reference, **kwargs)
