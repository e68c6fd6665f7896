"""Rows of a config, generated one at a time from the sources on disk.

For each subset of the config this reads the source layout (KoALA metadata, Zeroth tree,
KsponSpeech ``.trn``, Common Voice ``test.tsv``, ETRI talks), maps each record to the task's
columns (:mod:`koala.builder.rows`), loads its audio (16 kHz mono; ETRI segments by seeking),
adds noise when the config asks for this project's recipe, and yields ``(id, row)`` with the
audio as 16-bit PCM WAV bytes (self-contained when exported).

Bad input (a missing or corrupt audio file, a row missing a field, malformed choices) raises a
:class:`koala.sources.SourceError` naming the config, the source file, the line or row id, the
field and what was expected; with ``skip_bad`` the row is skipped, logged and counted instead.
Repairs of known defects of the published files are counted in a :class:`BuildReport`; a gold
answer no rule reads is such a repair, not an error: the row is kept with an empty label (see
:mod:`koala.builder.rows`), as the published code keeps the item in its denominator.

The noise recipe (:func:`koala.audio.add_noise`): ``white``, ``pink`` or ``babble`` noise mixed
at ``snr_db`` dB SNR, its random generator seeded from ``(seed, row id)``, so the same row gets
the same noise whatever order rows are built in. Babble is the sum of ``babble_talkers`` clips
drawn from a pool of the first :data:`BABBLE_POOL` other rows of the same subset.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from koala.audio import NOISE_TYPES, TARGET_SR, add_noise, load_audio, pcm16_mono_wav, wav_bytes
from koala.builder.registry import ConfigSpec, SubsetSpec
from koala.sources import AudioResolver, SourceError, as_text, looks_noisy
from koala.sources.common_voice import read_tsv
from koala.sources.etri import TalkReader
from koala.sources.koala_meta import fix_swapped, partner_paths, read_set, record_digest
from koala.sources.ksponspeech import clean_transcript, read_trn
from koala.sources.zeroth import read_zeroth
from koala.tasks import get_task

__all__ = [
    "BABBLE_POOL",
    "FIX_DESCRIPTIONS",
    "WARN_FIXES",
    "BuildOptions",
    "BuildReport",
    "generate_rows",
]

logger = logging.getLogger("koala.builder")

BABBLE_POOL = 8
DEFAULT_SNR_DB = 10.0
# default folders of the external corpora, relative to data_dir
DEFAULT_DIRS = {
    "zeroth": "zeroth",
    "ksponspeech": "ksponspeech",
    "common_voice": "common_voice",
    # the ETRI corpus's own folder (the published raw paths are audio/ETRI_translate_data1/...):
    # a talk missing from its path is looked up by name there only, never in another set
    "etri": "audio/ETRI_translate_data1",
}

FIX_DESCRIPTIONS: dict[str, str] = {
    "swapped_audio": "clean and noisy audio paths swapped between the two files; put right per row",
    "audio_condition_unpaired": "the audio path looks like the other noise condition and the "
    "other condition's file lacks the row, so a swap cannot be checked; kept as published",
    "choices_label_in_text": "a label-like string inside a choice text; labels read in sequence",
    "choices_misnumbered": "choice labels numbered wrongly; relabelled by position",
    "choices_list_labels": "a list of choices whose items carry their labels ('(A) ...'); "
    "labels taken off the texts, as the string form is read",
    "choices_slash_n": "choices separated by a literal '/n'; removed",
    "choices_truncated": "shown choices truncated (a choice missing); the original list used",
    "gold_from_original_choices": "free-text gold answer matched in the original-wording choices",
    "answer_by_containment": "world-knowledge answer not among the choices; matched the one "
    "choice it contains (or that contains it)",
    "answer_duplicate_choice": "answer text occurs twice among the choices; first one used",
    "counterfactual_by_text": "correct_index disagrees with new_answer; the text was used",
    "duplicate_choice_text": "two choices with the same text (kept; a text-matching scorer "
    "cannot tell them apart)",
    "duplicate_index": "an index used twice (one recording, two questions); id suffixed -2",
    "duplicate_row": "a row repeated exactly (same audio, same question, every field equal); "
    "one copy kept",
    "not_valid": "item not marked valid upstream; left out",
    "answer_unreadable": "gold answer read by no rule (names no choice); row kept with an empty "
    "answer label (the default scorer counts it invalid; the published protocol scores it from "
    "source_answer, as the published code keeps it in the denominator)",
    "counterfactual_unreadable": "counterfactual answer matches no choice; row kept with an "
    "empty counterfactual_answer label",
    "counterfactual_is_answer": "counterfactual answer equals the world-knowledge answer; row "
    "kept with an empty counterfactual_answer label",
    "segment_alias_middle_front": "segment spelled 'middle-front'; normalised to front-middle",
    "segment_disagrees_with_position": "published segment label disagrees with "
    "segment_of(position) for some evidence (label kept)",
}

# repairs that leave a row unscorable by the default protocol or unchecked: logged at WARNING
WARN_FIXES = frozenset(
    {
        "answer_unreadable",
        "counterfactual_unreadable",
        "counterfactual_is_answer",
        "audio_condition_unpaired",
        "duplicate_row",
    }
)


@dataclass
class BuildOptions:
    """Where the sources are and how to build (the builder config's fields)."""

    data_dir: Path
    metadata_dir: Path | None = None
    zeroth_dir: Path | None = None
    kspon_dir: Path | None = None
    common_voice_dir: Path | None = None
    etri_dir: Path | None = None
    noise_type: str | None = None
    snr_db: float | None = None
    seed: int = 0
    babble_talkers: int = 4
    skip_bad: bool = False
    kspon_transcript: str = "phonetic"

    def source_dir(self, kind: str) -> Path:
        explicit = {
            "zeroth": self.zeroth_dir,
            "ksponspeech": self.kspon_dir,
            "common_voice": self.common_voice_dir,
            "etri": self.etri_dir,
        }.get(kind)
        if explicit is not None:
            return Path(explicit)
        return self.data_dir / DEFAULT_DIRS[kind]

    @property
    def meta_dir(self) -> Path:
        return Path(self.metadata_dir) if self.metadata_dir is not None else self.data_dir


@dataclass
class BuildReport:
    """What one build did: rows per subset, repairs per kind, rows skipped (with why)."""

    config: str
    rows: Counter[str] = field(default_factory=Counter)
    fixes: Counter[tuple[str, str]] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)

    def fix(self, subset: str, kind: str) -> None:
        self.fixes[(subset, kind)] += 1

    def as_dict(self) -> dict[str, Any]:
        fixes: dict[str, dict[str, int]] = {}
        for (subset, kind), n in sorted(self.fixes.items()):
            fixes.setdefault(subset, {})[kind] = n
        return {
            "config": self.config,
            "rows": dict(self.rows),
            "fixes": fixes,
            "skipped": len(self.skipped),
            "skipped_rows": list(self.skipped),
        }

    def summary(self) -> str:
        parts = [f"{self.config}: {sum(self.rows.values())} rows"]
        for (subset, kind), n in sorted(self.fixes.items()):
            parts.append(f"{subset}: {kind} x{n}")
        if self.skipped:
            parts.append(f"{len(self.skipped)} bad rows skipped")
        return "; ".join(parts)


@dataclass
class _Pending:
    row_id: str
    source: Path
    line: int | None
    columns: dict[str, Any]
    audio: Path
    offset: float = 0.0
    duration: float | None = None
    original: Path | None = None


def _wav_bytes(array: np.ndarray) -> bytes:
    """16-bit PCM WAV bytes of a float array at 16 kHz (:func:`koala.audio.wav_bytes`)."""
    return wav_bytes(np.asarray(array, dtype=np.float64), TARGET_SR)


def _pcm16_mono_wav_frames(data: bytes) -> int | None:
    """Frames of a complete 16 kHz mono 16-bit PCM WAV file (``WAVE_FORMAT_PCM`` header),
    else ``None`` (:func:`koala.audio.pcm16_mono_wav`).

    Such a file is already what a row stores: it is embedded as is, without decoding and
    re-encoding. Any other format, rate or layout, or a file whose data chunk is cut short,
    returns ``None`` and goes through the decoder (which reports a corrupt file)."""
    found = pcm16_mono_wav(data, extensible=False) if len(data) >= 44 else None
    if found is None or found[0] != TARGET_SR or found[2] == found[1]:
        return None
    return (found[2] - found[1]) // 2


def _row_id(sub: SubsetSpec, key: str) -> str:
    return f"{sub.name}-{key}"


def _file_key(raw: str) -> str:
    stem = PurePosixPath(raw.replace("\\", "/")).stem
    for suffix in ("_noisy", "_noise"):
        stem = stem.removesuffix(suffix)
    return stem


def _pending_koala(
    spec: ConfigSpec, sub: SubsetSpec, opts: BuildOptions, want_noisy: bool, report: BuildReport
) -> Iterator[_Pending | SourceError]:
    file = sub.noisy_file if want_noisy else sub.clean
    assert file is not None
    path = opts.meta_dir / file
    if not path.is_file() and sub.fallback == "zeroth" and not want_noisy:
        logger.info("%s: %s not found; reading the Zeroth tree itself", spec.name, path)
        yield from _pending_zeroth(sub, opts)
        return
    partner_file = sub.clean if want_noisy else sub.noisy_file
    partner = partner_paths(opts.meta_dir / partner_file) if partner_file else {}
    search = [opts.source_dir(kind) for kind in sub.search]
    resolver = AudioResolver(opts.data_dir, search)
    task = get_task(sub.task)
    mapper = task.row_columns
    seen: Counter[str] = Counter()
    first_line: dict[str, int] = {}
    warned = False
    for line, rec in read_set(path):
        if isinstance(rec, SourceError):
            yield rec.where(source=path, line=line)
            continue
        digest = record_digest(rec)
        if digest in first_line:  # a copy, not a second question on the same recording
            report.fix(sub.name, "duplicate_row")
            logger.warning(
                "%s: %s line %d repeats line %d exactly (same audio, same question, every "
                "field equal); one copy kept",
                spec.name,
                path,
                line,
                first_line[digest],
            )
            continue
        first_line[digest] = line
        index = str(rec.get("index", f"line{line}"))
        seen[index] += 1
        key = index if seen[index] == 1 else f"{index}-{seen[index]}"
        if seen[index] == 2:
            report.fix(sub.name, "duplicate_index")
        row_id = _row_id(sub, key)
        try:
            columns = mapper(rec, sub, lambda kind: report.fix(sub.name, kind))
            if columns is None:
                continue
            raw = as_text(rec, "raw")
            if sub.id_from == "file":
                row_id = _row_id(sub, _file_key(raw))
            raw, swapped = fix_swapped(raw, partner.get(key), want_noisy)
            if swapped:
                report.fix(sub.name, "swapped_audio")
            elif partner and key not in partner and looks_noisy(raw) != want_noisy:
                report.fix(sub.name, "audio_condition_unpaired")
                logger.warning(
                    "%s: %s line %d, id %r: the %s audio %r looks %s, and %s has no row %r to "
                    "check a swap against; kept as published",
                    spec.name,
                    path,
                    line,
                    row_id,
                    "noisy" if want_noisy else "clean",
                    raw,
                    "clean" if want_noisy else "noisy",
                    opts.meta_dir / partner_file,
                    key,
                )
            elif not partner and not warned and looks_noisy(raw) != want_noisy:
                warned = True
                logger.warning(
                    "%s: %s line %d: the %s audio %r looks %s and there is no %s file to pair "
                    "it with; kept as published",
                    spec.name,
                    path,
                    line,
                    "noisy" if want_noisy else "clean",
                    raw,
                    "clean" if want_noisy else "noisy",
                    "clean" if want_noisy else "noisy",
                )
            audio = resolver.resolve(raw)
            offset, duration = 0.0, None
            if task.segments_of_recordings:
                offset, duration = columns["offset"], columns["segment_duration"]
                columns["talk_id"] = _file_key(raw)
            original = None
            orig_field = sub.fields.get("original_raw")
            if orig_field and not want_noisy and isinstance(rec.get(orig_field), str):
                original = resolver.resolve(rec[orig_field], field=orig_field)
        except SourceError as exc:
            yield exc.where(source=path, line=line, row_id=row_id)
            continue
        yield _Pending(row_id, path, line, columns, audio, offset, duration, original)


def _pending_zeroth(sub: SubsetSpec, opts: BuildOptions) -> Iterator[_Pending | SourceError]:
    base = opts.source_dir("zeroth")
    resolver = AudioResolver(base)
    for utt in read_zeroth(base):
        if isinstance(utt, SourceError):  # a line that is not UTF-8 text
            yield utt
            continue
        row_id = _row_id(sub, utt.utt_id)
        if not utt.text:
            yield SourceError(
                "no transcript after the utterance id",
                source=utt.source,
                line=utt.line,
                row_id=row_id,
                field="transcript",
                expected="'<utterance id> <transcript>'",
                fix="repair the line (or pass skip_bad=True)",
            )
            continue
        try:
            audio = resolver.confine(utt.path, utt.path.name, field="audio")
        except SourceError as exc:
            yield exc.where(source=utt.source, line=utt.line, row_id=row_id)
            continue
        yield _Pending(row_id, utt.source, utt.line, {"text": utt.text}, audio)


def _pending_kspon(sub: SubsetSpec, opts: BuildOptions) -> Iterator[_Pending | SourceError]:
    base = opts.source_dir("ksponspeech")
    trn = base / (sub.trn or "")
    resolver = AudioResolver(base, [base])
    for item in read_trn(trn):
        if isinstance(item, SourceError):  # a line that is not UTF-8 text
            yield item
            continue
        row_id = _row_id(sub, item.utt_id)
        try:
            if item.problem:
                raise SourceError(
                    item.problem,
                    field="line",
                    expected="'<path>.pcm :: <transcript>'",
                    fix="repair the line (or pass skip_bad=True)",
                )
            text = clean_transcript(item.transcript, opts.kspon_transcript)
            if not text:
                raise SourceError(
                    f"the transcript {item.transcript!r} is empty once its tags are removed",
                    field="transcript",
                    expected="a transcript",
                    fix="repair the line (or pass skip_bad=True)",
                )
            audio = resolver.resolve(item.path, field="path")
        except SourceError as exc:
            yield exc.where(source=trn, line=item.line, row_id=row_id)
            continue
        yield _Pending(row_id, trn, item.line, {"text": text}, audio)


def _pending_common_voice(sub: SubsetSpec, opts: BuildOptions) -> Iterator[_Pending | SourceError]:
    base = opts.source_dir("common_voice")
    tsv = base / (sub.tsv or "test.tsv")
    resolver = AudioResolver(base / "clips", [base])
    for item in read_tsv(tsv):
        if isinstance(item, SourceError):  # a row that is not UTF-8 text
            yield item
            continue
        row_id = _row_id(sub, item.utt_id)
        try:
            if item.problem:
                raise SourceError(item.problem, field="line", expected="a full row")
            if not item.sentence:
                raise SourceError("the sentence is empty", field="sentence", expected="a sentence")
            audio = resolver.resolve(item.path, field="path")
        except SourceError as exc:
            yield exc.where(source=tsv, line=item.line, row_id=row_id)
            continue
        yield _Pending(row_id, tsv, item.line, {"text": item.sentence}, audio)


def _pending(
    spec: ConfigSpec, sub: SubsetSpec, opts: BuildOptions, want_noisy: bool, report: BuildReport
) -> Iterator[_Pending | SourceError]:
    if sub.source in ("koala", "etri"):
        return _pending_koala(spec, sub, opts, want_noisy, report)
    if sub.source == "zeroth":
        return _pending_zeroth(sub, opts)
    if sub.source == "ksponspeech":
        return _pending_kspon(sub, opts)
    if sub.source == "common_voice":
        return _pending_common_voice(sub, opts)
    raise ValueError(f"unknown source {sub.source!r}")


def _load(item: _Pending, talks: TalkReader, original: bool = False) -> np.ndarray:
    path = item.original if original else item.audio
    assert path is not None
    fieldname = "original_raw" if original else "raw"
    try:
        if item.duration is not None and not original:
            array = talks.segment(path, item.offset, item.duration)
        else:
            array = load_audio(path)
    except SourceError as exc:
        raise exc.where(field=fieldname) from None
    except FileNotFoundError:
        raise SourceError(
            f"audio file not found: {path}",
            field=fieldname,
            expected="an existing audio file",
            fix="restore the file (or pass skip_bad=True)",
        ) from None
    except (ValueError, RuntimeError, OSError) as exc:
        raise SourceError(
            f"cannot decode {path}: {exc}",
            field=fieldname,
            expected="a decodable audio file (wav, flac, mp3, pcm)",
            fix="re-download the file (or pass skip_bad=True)",
        ) from None
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise SourceError(
            f"{path} decoded to {'no samples' if array.size == 0 else 'non-finite samples'}",
            field=fieldname,
            expected="a non-empty audio clip",
            fix="re-download the file (or pass skip_bad=True)",
        )
    return array


def _encoded(
    item: _Pending,
    talks: TalkReader,
    recipe: _Recipe | None,
    others: list[np.ndarray],
    original: bool = False,
) -> tuple[bytes, int]:
    """The WAV bytes a row stores for its audio (or original audio), and the sample count.

    A 16 kHz mono 16-bit WAV file used whole and without added noise is stored as is; anything
    else is decoded (cut, resampled, mixed with noise) and encoded as such a WAV."""
    path = item.original if original else item.audio
    assert path is not None
    name = os.fspath(path)
    if recipe is None and (original or item.duration is None) and name[-4:].lower() == ".wav":
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError:
            data = b""  # the decoder below reports it
        frames = _pcm16_mono_wav_frames(data)
        if frames:
            return data, frames
    array = _load(item, talks, original)
    if recipe is not None:
        key = f"{item.row_id}/original" if original else item.row_id
        array = add_noise(
            array, recipe.noise_type, recipe.snr_db, key, recipe.seed, others, recipe.talkers
        )
    return _wav_bytes(array), len(array)


@dataclass(frozen=True)
class _Recipe:
    noise_type: str
    snr_db: float
    seed: int
    talkers: int


def _recipe(spec: ConfigSpec, sub: SubsetSpec, opts: BuildOptions) -> _Recipe | None:
    if opts.noise_type is not None:
        if opts.noise_type not in NOISE_TYPES:
            raise ValueError(
                f"config {spec.name!r}: noise_type={opts.noise_type!r}; choose one of {NOISE_TYPES}"
            )
        if spec.noise == "noisy" and sub.noisy_kind == "published":
            raise ValueError(
                f"config {spec.name!r} holds the published noisy audio of {sub.name}; to add "
                f"this project's {opts.noise_type} noise use the clean config "
                f"{spec.name.removesuffix('_noisy')!r} with noise_type={opts.noise_type!r}"
            )
        snr = DEFAULT_SNR_DB if opts.snr_db is None else float(opts.snr_db)
        return _Recipe(opts.noise_type, snr, opts.seed, opts.babble_talkers)
    if spec.noise == "noisy" and sub.noisy_kind == "recipe":
        assert sub.recipe is not None
        snr = float(sub.recipe["snr_db"]) if opts.snr_db is None else float(opts.snr_db)
        return _Recipe(str(sub.recipe["noise_type"]), snr, opts.seed, opts.babble_talkers)
    if opts.snr_db is not None:
        raise ValueError(
            f"config {spec.name!r}: snr_db={opts.snr_db} without noise_type; pass noise_type="
            f"one of {NOISE_TYPES}"
        )
    return None


def _babble_pool(
    spec: ConfigSpec, sub: SubsetSpec, opts: BuildOptions, talks: TalkReader
) -> list[tuple[str, np.ndarray]]:
    pool: list[tuple[str, np.ndarray]] = []
    for item in _pending(spec, sub, opts, False, BuildReport(spec.name)):
        if isinstance(item, SourceError):
            continue
        try:
            pool.append((item.row_id, _load(item, talks)))
        except SourceError:
            continue
        if len(pool) > BABBLE_POOL:
            break
    return pool


def generate_rows(
    spec: ConfigSpec, opts: BuildOptions, report: BuildReport | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(id, row)`` for every row of config ``spec``, one at a time (see the module doc)."""
    report = report if report is not None else BuildReport(spec.name)
    if not Path(opts.data_dir).is_dir():
        raise SourceError(
            f"data_dir {str(opts.data_dir)!r} is not a folder",
            config=spec.name,
            expected="the KoALA root (metadata folders ASR/, SQA/, ... and audio/, audio_noise/)",
            fix="pass data_dir= (CLI: --data-dir) pointing at the downloaded benchmark",
        )
    talks = TalkReader()
    ids: set[str] = set()
    for sub in spec.subsets:
        recipe = _recipe(spec, sub, opts)
        want_noisy = spec.noise == "noisy" and sub.noisy_kind == "published"
        noise_label = "noisy" if (want_noisy or recipe is not None) else "clean"
        has_original = "original_audio" in get_task(sub.task).columns()  # once, not per row
        pool = (
            _babble_pool(spec, sub, opts, talks) if recipe and recipe.noise_type == "babble" else []
        )
        try:
            for item in _pending(spec, sub, opts, want_noisy, report):
                try:
                    if isinstance(item, SourceError):
                        raise item
                    if item.row_id in ids:
                        raise SourceError(
                            "the id occurs twice in the config",
                            source=item.source,
                            line=item.line,
                            row_id=item.row_id,
                            field="id",
                            expected="unique ids",
                            fix="remove the duplicate row (or pass skip_bad=True)",
                        )
                    others = [a for rid, a in pool if rid != item.row_id][:BABBLE_POOL]
                    audio, n_samples = _encoded(item, talks, recipe, others)
                    original = (
                        _encoded(item, talks, recipe, others, original=True)[0]
                        if item.original
                        else None
                    )
                except SourceError as exc:
                    if isinstance(item, _Pending):
                        exc.where(source=item.source, line=item.line, row_id=item.row_id)
                    exc.where(config=spec.name)
                    if not opts.skip_bad:
                        raise
                    logger.warning("skipped bad row: %s", exc)
                    report.skipped.append(str(exc))
                    continue
                ids.add(item.row_id)
                row: dict[str, Any] = {
                    "id": item.row_id,
                    "audio": {"bytes": audio, "path": f"{item.row_id}.wav"},
                    "subset": sub.name,
                    "noise": noise_label,
                    "duration": n_samples / TARGET_SR,
                    **item.columns,
                }
                if has_original:
                    row["original_audio"] = (
                        None
                        if original is None
                        else {"bytes": original, "path": f"{item.row_id}.original.wav"}
                    )
                report.rows[sub.name] += 1
                yield item.row_id, row
        except SourceError as exc:
            raise exc.where(config=spec.name) from None
    for (subset, kind), n in sorted(report.fixes.items()):
        logger.log(
            logging.WARNING if kind in WARN_FIXES else logging.INFO,
            "%s: %s: %s x%d (%s)",
            spec.name,
            subset,
            kind,
            n,
            FIX_DESCRIPTIONS.get(kind, ""),
        )
    if report.skipped:
        logger.warning("%s: %d bad rows skipped (skip_bad)", spec.name, len(report.skipped))
