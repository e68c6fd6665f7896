"""The legacy loading path on datasets 3.x (run by ``scripts/legacy_datasets3.sh``).

Under datasets 3.6 (no torch) this writes a small source tree in the real layouts and checks
that ``load_dataset("koala_bench.py", name, data_dir=..., trust_remote_code=True)`` builds each
config listed below with the expected ids, columns and audio (sampling rate and length).
Exits non-zero when anything differs.

datasets 3.x decodes ``Audio`` with librosa (a heavy dependency this light environment leaves
out), so the check reads the stored audio with ``Audio(decode=False)`` and decodes the WAV
bytes with soundfile: the same bytes users get decoded.
"""

from __future__ import annotations

import io
import math
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import datasets  # noqa: E402
import soundfile as sf  # noqa: E402
from source_trees import write_all  # noqa: E402

CONFIGS = (
    "pa_qa",
    "sca_qa_kpop",
    "sca_qa_kpop_noisy",
    "sqa_kcsat",
    "asr",
    "st_tst_common",
    "asr_common_voice_noisy",
)


def decode(value: dict | None) -> dict | None:
    """``{"array", "sampling_rate"}`` of a stored (undecoded) audio value."""
    if value is None:
        return None
    array, sr = sf.read(io.BytesIO(value["bytes"]), dtype="float32")
    return {"array": array, "sampling_rate": sr}


def check(name: str, rows: datasets.Dataset, expected: dict[str, dict]) -> list[str]:
    problems = []
    for column in ("audio", "original_audio"):
        if column in rows.features:
            rows = rows.cast_column(column, datasets.Audio(sampling_rate=16_000, decode=False))
    got = [r["id"] for r in rows]
    if got != list(expected):
        return [f"{name}: ids {got} != {list(expected)}"]
    for row in rows:
        exp = expected[row["id"]]
        audio = decode(row["audio"])
        assert audio is not None
        if audio["sampling_rate"] != 16_000:
            problems.append(f"{name} {row['id']}: sampling rate {audio['sampling_rate']}")
        tol = 0.1 if "common_voice" in row["id"] else 1e-3
        if abs(len(audio["array"]) / 16_000 - exp["duration"]) > tol:
            problems.append(
                f"{name} {row['id']}: {len(audio['array'])} samples, expected {exp['duration']} s"
            )
        for key, value in exp.items():
            if key == "duration":
                if not math.isclose(row[key], value, abs_tol=tol):
                    problems.append(f"{name} {row['id']}: duration {row[key]} != {value}")
            elif key == "original_audio":
                got_audio = decode(row[key])
                if (value is None) != (got_audio is None) or (
                    value is not None and abs(len(got_audio["array"]) / 16_000 - value) > 1e-3
                ):
                    problems.append(f"{name} {row['id']}: original_audio {got_audio!r:.60}")
            elif row[key] != value:
                problems.append(f"{name} {row['id']}: {key} = {row[key]!r} != {value!r}")
    return problems


def main() -> int:
    print(f"datasets {datasets.__version__}")
    try:
        import torch  # noqa: F401

        print("torch is importable: this check must run without it", file=sys.stderr)
        return 1
    except ImportError:
        pass
    script = str(HERE.parent / "koala_bench.py")
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_all(Path(tmp) / "src", use_speech=False)
        for name in CONFIGS:
            ds = datasets.load_dataset(
                script,
                name,
                data_dir=str(Path(tmp) / "src"),
                split="test",
                trust_remote_code=True,
                cache_dir=str(Path(tmp) / "cache"),
            )
            problems = check(name, ds, manifest[name])
            print(f"{name}: {len(ds)} rows {'ok' if not problems else 'FAILED'}")
            failed += problems
    for p in failed:
        print(p, file=sys.stderr)
    print(
        f"{len(CONFIGS) - len({p.split()[0] for p in failed})} passed, "
        f"{len({p.split()[0] for p in failed})} failed"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
