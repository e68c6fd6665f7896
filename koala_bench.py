"""KoALa-Bench as a Hugging Face ``datasets`` builder.

One config per published set (``sqa_click``), its noisy variant (``sqa_click_noisy``), and one
per task that unites its subsets with a ``subset`` column (``sqa``, ``sqa_noisy``). The configs
are declared as data in ``koala/builder_configs/*.yaml``. One split, ``test``.

Use it

* directly (any datasets version)::

      from koala_bench import KoalaBench
      b = KoalaBench(config_name="pa_qa", data_dir="/data/KoALA")
      b.download_and_prepare()
      ds = b.as_dataset(split="test")

* through the Parquet export (datasets 4/5 removed loading scripts): ``koala-bench export
  --data-dir /data/KoALA --out koala_parquet``, then ``load_dataset("koala_parquet", "pa_qa",
  split="test")``;
* as a legacy script on datasets 3.x: ``load_dataset("koala_bench.py", "pa_qa",
  data_dir="/data/KoALA", trust_remote_code=True)``.

The builder reads local files only (the KoALA audio is on the Hugging Face Hub as
``scailaboratory/KoALA``; ASR and ST audio come from the original corpora). Keep the imports at
the top, one module per statement: datasets 3.x reads this file's import lines to find its
dependencies (``koala`` must be importable).
"""

import dataclasses
import os
from pathlib import Path

import datasets

from koala.builder import (
    BuildOptions,
    BuildReport,
    features_for,
    generate_rows,
    get_config,
    load_registry,
)

_VERSION = "1.0.0"
_HOMEPAGE = "https://github.com/scai-research/KoALa-Bench"
_CITATION = (
    "KoALa-Bench: Korean speech understanding and faithfulness of large audio language models. "
    "https://github.com/scai-research/KoALa-Bench"
)


@dataclasses.dataclass
class KoalaBenchConfig(datasets.BuilderConfig):
    """A KoALa-Bench config. The registry fills ``task``, ``subsets`` and ``noise``; users may
    pass the rest as keyword arguments of the builder (or of ``load_dataset``).

    Attributes:
        task: ``asr``, ``st``, ``sqa``, ``sif``, ``sca_qa`` or ``pa_qa``.
        subsets: the published sets this config reads, in order.
        noise: ``clean`` or ``noisy`` (the published noisy audio, or this project's recipe for
            sets without it, as ``koala/builder_configs/*.yaml`` declares).
        noise_type: add this project's noise to a clean config: ``white``, ``pink`` or
            ``babble`` (other rows of the same set). ``None``: no added noise.
        snr_db: signal-to-noise ratio of the added noise in dB (default 10).
        seed: seed of the noise recipe; the generator of each row is seeded from
            ``(seed, row id)``.
        babble_talkers: how many other clips make up babble noise.
        skip_bad: skip (and log, and count) bad rows instead of stopping at the first.
        metadata_dir: where the KoALA metadata JSONL folders are (default ``data_dir``).
        zeroth_dir: the Zeroth-Korean tree (default ``data_dir/zeroth``).
        kspon_dir: the KsponSpeech eval folder with the ``.trn`` files and the PCM (default
            ``data_dir/ksponspeech``).
        common_voice_dir: the Common Voice language folder with ``test.tsv`` and ``clips/``
            (default ``data_dir/common_voice``).
        etri_dir: the ETRI corpus folder (default ``data_dir/audio/ETRI_translate_data1``);
            a talk missing from its published path is searched for by file name there only.
        kspon_transcript: ``phonetic`` (default) or ``spelling`` side of KsponSpeech's dual
            transcripts.
    """

    task: str = ""
    subsets: tuple = ()
    noise: str = "clean"
    noise_type: str | None = None
    snr_db: float | None = None
    seed: int = 0
    babble_talkers: int = 4
    skip_bad: bool = False
    metadata_dir: str | None = None
    zeroth_dir: str | None = None
    kspon_dir: str | None = None
    common_voice_dir: str | None = None
    etri_dir: str | None = None
    kspon_transcript: str = "phonetic"


def _builder_configs() -> list:
    return [
        KoalaBenchConfig(
            name=spec.name,
            version=datasets.Version(_VERSION),
            description=spec.description,
            task=spec.task,
            subsets=tuple(s.name for s in spec.subsets),
            noise=spec.noise,
        )
        for spec in load_registry().values()
    ]


def _path(value: str | None) -> Path | None:
    return None if value in (None, "") else Path(os.path.abspath(os.path.expanduser(value)))


class KoalaBench(datasets.GeneratorBasedBuilder):
    """KoALa-Bench: Korean speech understanding and speech faithfulness of audio LMs."""

    VERSION = datasets.Version(_VERSION)
    BUILDER_CONFIG_CLASS = KoalaBenchConfig
    BUILDER_CONFIGS = _builder_configs()
    DEFAULT_WRITER_BATCH_SIZE = 100  # audio rows: keep writer batches (and memory) small

    def __init__(self, *args, **kwargs):
        name = kwargs.get("config_name")
        if name is not None:
            get_config(name)  # an unknown name fails here, with close matches suggested
        super().__init__(*args, **kwargs)
        self.report = None

    def _info(self) -> datasets.DatasetInfo:
        spec = get_config(self.config.name)
        licences = sorted({s.licence for s in spec.subsets if s.licence})
        return datasets.DatasetInfo(
            description=spec.description,
            features=features_for(spec.task),
            homepage=_HOMEPAGE,
            license="; ".join(licences) or "other",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        if not self.config.data_dir:
            raise ValueError(
                f"config {self.config.name!r} needs data_dir=: the KoALA root (metadata folders "
                "ASR/, SQA/, ... and audio/, audio_noise/; the audio is scailaboratory/KoALA on "
                "the Hugging Face Hub), e.g. KoalaBench(config_name=..., data_dir='/data/KoALA')"
            )
        return [datasets.SplitGenerator(name=datasets.Split.TEST, gen_kwargs={})]

    def _generate_examples(self):
        cfg = self.config
        spec = get_config(cfg.name)
        options = BuildOptions(
            data_dir=_path(cfg.data_dir),
            metadata_dir=_path(cfg.metadata_dir),
            zeroth_dir=_path(cfg.zeroth_dir),
            kspon_dir=_path(cfg.kspon_dir),
            common_voice_dir=_path(cfg.common_voice_dir),
            etri_dir=_path(cfg.etri_dir),
            noise_type=cfg.noise_type,
            snr_db=cfg.snr_db,
            seed=int(cfg.seed),
            babble_talkers=int(cfg.babble_talkers),
            skip_bad=bool(cfg.skip_bad),
            kspon_transcript=cfg.kspon_transcript,
        )
        self.report = BuildReport(spec.name)
        yield from generate_rows(spec, options, self.report)
