"""The audio reaches lmms-eval's own model classes, each item gets its own clip, batches never
mix tasks, and the canary stops a run whose answers ignore the audio (issue 22, lmms-eval).

Every test runs lmms-eval's evaluator with its real model classes on the mini benchmark:
``qwen2_audio`` with a tiny randomly initialised Qwen2-Audio built offline (its processor and
audio encoder see the clips), and the API classes (``openai`` chat and ``--force_simple``,
``gpt4o_audio``, ``gemini``) against a local stand-in server (tests/openai_server.py) that
decodes the WAV each request carries. What arrived is compared with what the test computes
from the rows itself: the row's own clip (SCA-QA's text-only condition: 1 s of silence, its
original condition: the original speech) with the row's own prompt.
"""

from __future__ import annotations

import base64
import io
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("lmms_eval", reason="lmms-eval is not installed")
sf = pytest.importorskip("soundfile")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from openai_server import Reply, ScriptedServer, completion  # noqa: E402

from koala.integrations.lmms_eval import core  # noqa: E402

PKG = Path(core.__file__).resolve().parent
CONFIGS = ("asr_zeroth", "sqa_click", "sqa_kcsat", "sca_qa_kpop")
#: lmms-eval tasks of four koala configs; koala_sca_qa_kpop is the group of its 3 conditions
TASKS = ("koala_asr_zeroth", "koala_sqa_click", "koala_sqa_kcsat", "koala_sca_qa_kpop")
SR = 16000


@pytest.fixture(scope="module")
def mini_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (the mini benchmark's speech)")
    from koala.mini import build_mini_tree
    from koala.prepare import prepare

    root = tmp_path_factory.mktemp("harness_mini")
    tree = build_mini_tree(root / "src")
    prepare(tree, list(CONFIGS), cache_dir=root / "cache")
    return root / "cache"


@pytest.fixture
def cache_env(mini_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # lmms-eval resolves its datasets cache once per process (lru_cache): resolve it anew
    # here and forget it after, for the next test's cache
    from lmms_eval.api.task import _resolve_hf_datasets_cache_dir

    monkeypatch.setenv("HF_DATASETS_CACHE", str(mini_cache))
    _resolve_hf_datasets_cache_dir.cache_clear()
    yield mini_cache
    _resolve_hf_datasets_cache_dir.cache_clear()


def _rows(cache: Path, config: str) -> list[dict[str, Any]]:
    import datasets

    return list(datasets.load_dataset("koala-bench", config, split="test", cache_dir=str(cache)))


def _task_names(tasks: Iterable[str]) -> list[str]:
    groups = core.lmms_groups()
    return [m for t in tasks for m in (groups.get(t) or (t,))]


def expected_requests(cache: Path, tasks: Iterable[str]) -> list[tuple[str, str, np.ndarray]]:
    """``(task, prompt, clip)`` of every request of ``tasks``, from the rows: the row's
    ``audio`` (SCA-QA's counterfactual condition too), its ``original_audio`` (the original
    condition, rows that have one), 1 s of zeros (the text-only condition)."""
    out = []
    for name in _task_names(tasks):
        spec = core.lmms_tasks()[name]
        for row in _rows(cache, spec.config):
            if spec.condition == "text":
                clip = np.zeros(SR, dtype=np.float32)
            else:
                value = row["original_audio" if spec.condition == "original" else "audio"]
                if value is None:
                    continue  # no original speech published for this row
                assert value["sampling_rate"] == SR
                clip = np.asarray(value["array"], dtype=np.float32).reshape(-1)
            prompt = core.doc_to_text({**row, core.TASK_COLUMN: name})
            out.append((name, prompt, clip))
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    # 16-bit WAV on the way: one quantisation step apart at most
    return a.shape == b.shape and bool(np.max(np.abs(a - b), initial=0.0) <= 1.5 / 32768)


def assert_each_got_its_own_clip(
    received: Sequence[tuple[str, np.ndarray]],
    expected: Sequence[tuple[str, str, np.ndarray]],
) -> None:
    """Every request received exactly once, with the prompt of its row and that row's clip:
    ``received`` holds ``(text sent, clip)`` (the text may wrap the prompt in a template)."""
    left = list(expected)
    wrong = []
    for text, clip in received:
        match = next(
            (k for k, (_, prompt, want) in enumerate(left) if prompt in text and _same(clip, want)),
            None,
        )
        if match is None:
            with_prompt = [t for t, p, _ in left if p in text]
            wrong.append(f"{text[-80:]!r} (prompt of {with_prompt or 'no task'}) with another clip")
        else:
            left.pop(match)
    assert not wrong, f"{len(wrong)} request(s) got a clip not their own: {wrong[:3]}"
    assert not left, f"{len(left)} request(s) never sent: {[(t, p[:40]) for t, p, _ in left[:3]]}"


def _wav(data: bytes) -> np.ndarray:
    arr, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == SR
    return arr.reshape(-1)


def _data_uri(url: str) -> np.ndarray:
    head, _, b64 = url.partition(",")
    assert head == "data:audio/wav;base64", head[:40]
    return _wav(base64.b64decode(b64))


def sent_audio(body: dict[str, Any]) -> tuple[str, list[np.ndarray]]:
    """The text and the clips of an OpenAI chat request (``input_audio`` or ``audio_url``)."""
    text, clips = [], []
    for msg in body["messages"]:
        content = msg["content"]
        for part in [content] if isinstance(content, str) else content:
            if isinstance(part, str) or part.get("type") == "text":
                text.append(part if isinstance(part, str) else part["text"])
            elif part["type"] == "input_audio":
                assert part["input_audio"]["format"] == "wav"
                clips.append(_wav(base64.b64decode(part["input_audio"]["data"])))
            elif part["type"] == "audio_url":
                clips.append(_data_uri(part["audio_url"]["url"]))
            else:
                raise AssertionError(f"unexpected part {part['type']!r}")
    return "\n".join(text), clips


def _evaluate(model: Any, tasks: Sequence[str], tmp: Path, **kwargs: Any) -> dict[str, Any]:
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    name = model if isinstance(model, str) else kwargs.pop("model_name")
    return simple_evaluate(
        model=model,
        tasks=list(tasks),
        task_manager=TaskManager("WARNING", include_path=str(PKG), model_name=name),
        log_samples=True,
        verbosity="WARNING",
        **kwargs,
    )


def _answers(results: dict[str, Any]) -> dict[str, list[str]]:
    return {
        t: [s["resps"][0][0] if isinstance(s["resps"][0], list) else s["resps"][0] for s in ss]
        for t, ss in results["samples"].items()
    }


# ------------------------------------------------------------------ tiny Qwen2-Audio
@pytest.fixture(scope="module")
def tiny_qwen2_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised Qwen2-Audio with its real processor, saved to disk
    (:func:`tiny_models.save_tiny_qwen2_audio`)."""
    pytest.importorskip("torch")
    pytest.importorskip("tokenizers")
    from tiny_models import save_tiny_qwen2_audio

    path = tmp_path_factory.mktemp("tiny-qwen2-audio")
    save_tiny_qwen2_audio(path)
    return path


class _Recorder:
    """Stands in for the class's processor: records each call's texts and clips, then calls
    the real processor."""

    def __init__(self, processor: Any, calls: list[tuple[list[str], list[np.ndarray]]]) -> None:
        self._processor, self._calls = processor, calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._processor, name)

    def __call__(self, *, text: Any, audio: Any, **kwargs: Any) -> Any:
        self._calls.append((list(text), [np.asarray(a, dtype=np.float32) for a in audio]))
        return self._processor(text=text, audio=audio, **kwargs)


def _qwen2_audio(path: Path, batch_size: int) -> Any:
    from lmms_eval.models.simple.qwen2_audio import Qwen2_Audio

    lm = Qwen2_Audio(pretrained=str(path), device="cpu", device_map="auto", batch_size=batch_size)
    # the class moves inputs to "cuda" under device_map="auto" and builds on cuda:N otherwise;
    # on this CPU-only machine it runs once its device map names the CPU
    lm.device_map = "cpu"
    return lm


def test_qwen2_audio_batches_get_each_items_own_clip(
    cache_env: Path, tiny_qwen2_audio: Path, tmp_path: Path
) -> None:
    """batch_size 4 across four koala configs (six lmms-eval tasks): every request reaches the
    processor with its own row's clip and prompt, and the audio encoder gets exactly those
    clips' features; before the per-task stop sequence, batches mixed tasks and each item was
    read from the batch's first task (K-SAT questions got K-pop clips)."""
    import torch

    lm = _qwen2_audio(tiny_qwen2_audio, batch_size=4)
    calls: list[tuple[list[str], list[np.ndarray]]] = []
    real = lm.processor
    lm.processor = _Recorder(real, calls)
    encoded: list[torch.Tensor] = []

    def record(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        encoded.append(args[0] if args else kwargs["input_features"])

    lm.model.model.audio_tower.register_forward_pre_hook(record, with_kwargs=True)
    out = _evaluate(
        lm, TASKS, tmp_path, model_name="qwen2_audio", batch_size=4, gen_kwargs="max_new_tokens=2"
    )
    expected = expected_requests(cache_env, TASKS)
    assert max(len(a) for _, a in calls) > 1  # batches of several items did run
    received = []
    for texts, audios in calls:
        # the class cuts a clip longer than 30 s into 30 s pieces, one audio tag each
        pieces = iter(audios)
        for text in texts:
            n = text.count("<|audio_bos|>")
            received.append((text, np.concatenate([next(pieces) for _ in range(n)])))
        assert next(pieces, None) is None
    assert_each_got_its_own_clip(received, expected)
    # what the audio encoder was fed: the features of those clips, batch by batch
    assert len(encoded) == len(calls)
    for (_, audios), feats in zip(calls, encoded, strict=True):
        want = real.feature_extractor(audios, sampling_rate=SR, return_tensors="pt")
        assert torch.allclose(feats.float(), want["input_features"].float(), atol=1e-5)
    # each sample's record is its own task's (the answers came back to their requests)
    for task, samples in out["samples"].items():
        assert {s["accuracy" if "accuracy" in s else "cer"]["lmms_task"] for s in samples} == {task}


def test_each_task_has_its_own_stop_sequence_so_batches_never_mix() -> None:
    """lmms-eval's Collator groups requests by their generation_kwargs; every task's differ."""
    from lmms_eval.utils import Collator

    from koala.integrations.lmms_eval import generate

    files = generate.generate_files()
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    kwargs = {
        name: yaml.load(text, Loader=_Loader)["generation_kwargs"]
        for name, text in files.items()
        if name.endswith(".yaml") and "task:" in text and "group:" not in text
    }
    assert len(kwargs) == len(core.lmms_tasks()) + 1  # with the canary
    args = [("ctx", kw, None, 0, name, "test") for name, kw in kwargs.items()]
    groups = Collator(args, lambda x: (0, x[0]), grouping=True).arr_with_indices
    assert len(groups) == len(kwargs)  # one group (so batches of one task) per task
    assert all(kw["until"] == [core.stop_sequence(n.removesuffix(".yaml"))] for n, kw in
               kwargs.items())  # fmt: skip


# ---------------------------------------------------------------- API classes
def _hearing_script(answers: dict[bytes, str] | None = None) -> Callable[..., Reply]:
    """Answers with a digest of the clip it got (so answers depend on the audio)."""

    def script(body: dict[str, Any], n: int) -> Reply:
        _, clips = sent_audio(body)
        key = b"".join(np.round(c[:4000] * 32768).astype("<i2").tobytes() for c in clips)
        import hashlib

        return Reply(body=completion("(A) " + hashlib.sha1(key).hexdigest()[:8]))

    return script


def test_openai_chat_class_sends_each_items_clip_as_audio_url(
    cache_env: Path, tmp_path: Path
) -> None:
    """`--model openai` (chat class, a vLLM/SGLang server): the clip arrives as an audio_url
    data URI; before, the clip was labelled video and the class crashed before sending."""
    with ScriptedServer(_hearing_script()) as srv:
        out = _evaluate(
            "openai",
            TASKS,
            tmp_path,
            model_args=f"model_version=m,base_url={srv.url},api_key=x,max_retries=1",
        )
        received = []
        for body in srv.requests:
            text, clips = sent_audio(body)
            assert len(clips) == 1
            assert body["messages"][0]["content"][0]["type"] == "audio_url"
            received.append((text, clips[0]))
    assert_each_got_its_own_clip(received, expected_requests(cache_env, TASKS))
    assert all(a.startswith("(A) ") for ans in _answers(out).values() for a in ans)


def test_openai_force_simple_sends_each_items_clip_as_input_audio(
    cache_env: Path, tmp_path: Path
) -> None:
    """`--model openai --force_simple` (OpenAI's own audio models, a vLLM server): the clip
    arrives as input_audio WAV; before, the class dropped the arrays and sent text only."""
    with ScriptedServer(_hearing_script()) as srv:
        _evaluate(
            "openai",
            TASKS,
            tmp_path,
            model_args=f"model_version=m,base_url={srv.url},api_key=x,max_retries=1",
            force_simple=True,
        )
        received = []
        for body in srv.requests:
            text, clips = sent_audio(body)
            assert [p["type"] for p in body["messages"][0]["content"]] == ["text", "input_audio"]
            received.append((text, clips[0]))
    assert_each_got_its_own_clip(received, expected_requests(cache_env, TASKS))


def test_gpt4o_audio_class_sends_each_items_clip(
    cache_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--model gpt4o_audio` (OpenAI audio models through lmms-eval's dedicated class)."""
    pytest.importorskip("librosa")
    with ScriptedServer(_hearing_script()) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        monkeypatch.setenv("OPENAI_API_KEY", "x")
        _evaluate("gpt4o_audio", ("koala_sqa_click", "koala_sca_qa_kpop"), tmp_path)
        received = []
        for body in srv.requests:
            text, clips = sent_audio(body)
            assert len(clips) == 1
            received.append((text, clips[0]))
    expected = expected_requests(cache_env, ("koala_sqa_click", "koala_sca_qa_kpop"))
    assert_each_got_its_own_clip(received, expected)


def _gemini_reply(body: dict[str, Any], n: int) -> Reply:
    return Reply(
        body={
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "(A)"}]},
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
        }
    )


def gemini_sent(body: dict[str, Any]) -> tuple[str, list[np.ndarray]]:
    text, clips = [], []
    for content in body["contents"]:
        for part in content["parts"]:
            inline = part.get("inlineData") or part.get("inline_data")
            if inline is not None:
                assert (inline.get("mimeType") or inline.get("mime_type")) == "audio/wav"
                data = inline["data"]  # google-genai sends URL-safe base64
                clips.append(_wav(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))))
            elif "text" in part:
                text.append(part["text"])
    return "\n".join(text), clips


@pytest.mark.parametrize("force_simple", [False, True], ids=["chat", "simple"])
def test_gemini_class_sends_each_items_clip(
    cache_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, force_simple: bool
) -> None:
    """`--model gemini` against a stand-in generateContent endpoint: the clip arrives as inline
    audio/wav; before, the chat class sent the prompt only (the clip labelled video)."""
    pytest.importorskip("google.genai")
    tasks = ("koala_sqa_click", "koala_sca_qa_kpop")
    with ScriptedServer(_gemini_reply) as srv:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", srv.url.removesuffix("/v1"))
        _evaluate(
            "gemini",
            tasks,
            tmp_path,
            model_args="model_version=gemini-x,api_key=x,max_retries=1",
            force_simple=force_simple,
        )
        received = []
        for body in srv.requests:
            text, clips = gemini_sent(body)
            assert len(clips) == 1, text[:80]
            received.append((text, clips[0]))
    assert_each_got_its_own_clip(received, expected_requests(cache_env, tasks))


# ------------------------------------------------------------ the chat message itself
def test_doc_to_messages_follows_lmms_evals_audio_message_shape(cache_env: Path) -> None:
    """The message validates as lmms-eval's ChatMessages with an audio part (XModBench's
    shape); each class's reading of the url gives the row's own clip: a WAV file (Gemini,
    MiniCPM-o, Qwen-Omni through qwen_omni_utils), a data URI (the OpenAI-style classes)."""
    from lmms_eval.protocol import ChatMessages

    name = "koala_sqa_kcsat"
    rows = _rows(cache_env, "sqa_kcsat")
    doc = {**rows[1], core.TASK_COLUMN: name}
    want = np.asarray(rows[1]["audio"]["array"], dtype=np.float32)
    msgs = ChatMessages(messages=core.doc_to_messages(doc, {}))
    images, videos, audios = msgs.extract_media()
    assert (images, videos) == ([], []) and len(audios) == 1
    assert _same(sf.read(audios[0], dtype="float32")[0], want)  # MiniCPM-o, Gemini: a file
    assert msgs.messages[0].content[1].text == core.doc_to_text(doc)
    uri = core.doc_to_messages(doc, {"message_audio": "data_uri"})[0]["content"][0]["url"]
    assert _same(_data_uri(uri), want)
    (part,) = [p for p in ChatMessages(messages=core.doc_to_messages(
        doc, {"message_audio": "data_uri"})).to_openai_messages()[0]["content"]
        if p["type"] != "text"]  # fmt: skip
    assert part == {"type": "audio_url", "audio_url": {"url": uri}}


def _qwen_omni_audio_info() -> Callable[..., Any]:
    """qwen_omni_utils' process_audio_info (what its process_mm_info calls for the audio),
    loaded from its own file: the package's __init__ also imports its video code, which needs
    torchvision, and torchvision does not load beside this machine's CPU torch."""
    import importlib.util

    spec = importlib.util.find_spec("qwen_omni_utils")
    if spec is None or spec.origin is None:
        pytest.skip("qwen-omni-utils is not installed")
    pytest.importorskip("librosa")
    path = Path(spec.origin).parent / "v2_5" / "audio_process.py"
    mod_spec = importlib.util.spec_from_file_location("qwen_omni_audio_process", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module.process_audio_info


def test_qwen_omni_reads_the_rows_clip_from_the_message(cache_env: Path) -> None:
    """What lmms-eval's qwen2_5_omni / qwen3_omni chat classes do with a message before the
    model: to_hf_messages, then qwen_omni_utils' audio step of process_mm_info; the audio it
    finds is the row's clip (before: none, the clip was labelled video)."""
    from lmms_eval.protocol import ChatMessages

    process_audio_info = _qwen_omni_audio_info()
    rows = _rows(cache_env, "sca_qa_kpop")
    doc = {**rows[0], core.TASK_COLUMN: "koala_sca_qa_kpop_original"}
    msgs = ChatMessages(messages=core.doc_to_messages(doc, {}))
    (got,) = process_audio_info(msgs.to_hf_messages(), use_audio_in_video=False)
    assert _same(np.asarray(got, dtype=np.float32), np.asarray(rows[0]["original_audio"]["array"]))
    # what lmms-eval built before, from doc_to_visual's arrays: a "video" part, no audio
    from lmms_eval.api.task import ConfigurableMessagesTask

    auto = ChatMessages(
        messages=ConfigurableMessagesTask._build_user_turn(core.doc_to_audio(doc), "q")
    )
    assert [c.type for c in auto.messages[0].content] == ["video", "text"]
    assert process_audio_info(auto.to_hf_messages(), use_audio_in_video=False) is None


def test_phi4_chat_path_is_refused_and_its_simple_path_carries_the_clip(
    cache_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lmms-eval's phi4_multimodal chat class drops the audio from its prompt: the task refuses
    it, naming the way that works; its simple class's prompt builder puts the clip in."""
    import types

    pytest.importorskip("librosa")
    # the module imports decord (video decoding, not installed here) at its top; the prompt
    # builder tested uses none of it
    monkeypatch.setitem(sys.modules, "decord", types.SimpleNamespace(VideoReader=None, cpu=None))
    from lmms_eval.models.simple.phi4_multimodal import Phi4

    kwargs = {**core.MODEL_KWARGS["phi4_multimodal"]}
    rows = _rows(cache_env, "sqa_click")
    doc = {**rows[0], core.TASK_COLUMN: "koala_sqa_click"}
    with pytest.raises(RuntimeError, match="--force_simple --batch_size 1"):
        core.doc_to_messages(doc, kwargs)

    class _Proc:  # the attribute default_process reads
        class audio_processor:
            sampling_rate = SR

    stand_in = type("Phi4Stub", (), {"_processor": _Proc})()
    text, images, audios = Phi4.default_process(
        stand_in, core.doc_to_audio(doc, kwargs), ["prompt"]
    )
    assert text.startswith("<|user|><|audio_1|>") and images is None
    (clip, rate), = audios  # fmt: skip
    assert rate == SR and _same(np.asarray(clip, dtype=np.float32), np.asarray(
        rows[0]["audio"]["array"], dtype=np.float32))  # fmt: skip


def test_vllm_force_simple_is_refused(cache_env: Path) -> None:
    rows = _rows(cache_env, "sqa_click")
    doc = {**rows[0], core.TASK_COLUMN: "koala_sqa_click"}
    with pytest.raises(RuntimeError, match="without --force_simple"):
        core.doc_to_audio(doc, core.MODEL_KWARGS["vllm"])


def test_vllm_chat_class_builds_each_items_request_with_its_clip(cache_env: Path) -> None:
    """`--model vllm` (in-process vLLM, a GPU machine with the vllm package: not here): the
    class's own request builder (make_one_request, what it hands LLM.chat) carries each item's
    clip as an audio_url data URI; the engine itself is not started."""
    from lmms_eval.models.chat.vllm import VLLM
    from lmms_eval.tasks import TaskManager, get_task_dict

    tasks = ("koala_sqa_click", "koala_sca_qa_kpop")
    manager = TaskManager("WARNING", include_path=str(PKG), model_name="vllm")
    task_dict = get_task_dict(list(tasks), manager, "chat")
    lm = object.__new__(VLLM)  # no engine: the attributes make_one_request reads
    lm.task_dict, lm.max_new_tokens, lm.is_qwen3_vl = {}, 256, False
    lm.max_pixels, lm.min_image_pixels, lm.max_frame_num, lm.fps, lm.nframes = 1, 1, 1, None, 1

    def leaves(d: dict[Any, Any]) -> Iterable[Any]:
        for v in d.values():
            yield from leaves(v) if isinstance(v, dict) else [v]

    by_name = {t.config.task: t for t in leaves(task_dict)}
    assert sorted(by_name) == sorted(_task_names(tasks))
    received = []
    for name, task in by_name.items():
        lm.task_dict[name] = task.dataset
        task.build_all_requests(limit=None, rank=0, world_size=1)
        for req in task.instances:
            messages, params = lm.make_one_request(req)
            assert params["temperature"] == 0
            (part,) = [p for p in messages[0]["content"] if p["type"] != "text"]
            text = "".join(p["text"] for p in messages[0]["content"] if p["type"] == "text")
            received.append((text, _data_uri(part["audio_url"]["url"])))
    assert_each_got_its_own_clip(received, expected_requests(cache_env, tasks))


# ----------------------------------------------------------------------- the canary
def _constant(body: dict[str, Any], n: int) -> Reply:
    return Reply(body=completion("(A)"))


def test_canary_passes_when_answers_follow_the_audio(cache_env: Path, tmp_path: Path) -> None:
    with ScriptedServer(_hearing_script()) as srv:
        out = _evaluate(
            "openai",
            ["koala_canary"],
            tmp_path,
            model_args=f"model_version=m,base_url={srv.url},api_key=x,max_retries=1",
        )
        clips = [sent_audio(b)[1][0] for b in srv.requests]
    rows = _rows(cache_env, core.CANARY_CONFIG)[: core.CANARY_ROWS]
    own = [np.asarray(r["audio"]["array"], dtype=np.float32) for r in rows]
    # each row: its own clip, silence as long, the next row's clip
    assert len(clips) == 3 * len(rows)
    for want in own:
        assert sum(_same(c, want) for c in clips) == 2  # own, and the previous row's "other"
        assert sum(_same(c, np.zeros_like(want)) for c in clips) >= 1
    assert out["results"]["koala_canary"]["audio_dependent,none"] == 1.0


def test_canary_stops_the_run_when_answers_ignore_the_audio(
    cache_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server answering the same whatever it hears: the run stops with exit status 6 and the
    report of koala-bench check (every answer shown)."""
    with ScriptedServer(_constant) as srv, pytest.raises(SystemExit) as stop:
        _evaluate(
            "openai",
            ["koala_canary", "koala_sqa_click"],
            tmp_path,
            model_args=f"model_version=m,base_url={srv.url},api_key=x,max_retries=1",
        )
    assert stop.value.code == 6
    err = capsys.readouterr().err
    assert "koala_canary: FAILED: the answers do not depend on the audio" in err
    assert err.count("'(A)'") == 3 * core.CANARY_ROWS


def test_a_failed_request_is_a_failed_record(cache_env: Path, tmp_path: Path) -> None:
    """lmms-eval's API classes answer "[LMMS_EVAL_REQUEST_FAILED ...]" for a request that
    failed; the record says failed and the accuracy counts it wrong (before: an ok record whose
    text was read for a label)."""

    def script(body: dict[str, Any], n: int) -> Reply:
        text, _ = sent_audio(body)
        return Reply(status=400, body={"error": "no"}) if n == 0 else Reply(
            body=completion(text))  # fmt: skip

    with ScriptedServer(script) as srv:
        out = _evaluate(
            "openai",
            ["koala_sqa_click"],
            tmp_path,
            model_args=f"model_version=m,base_url={srv.url},api_key=x,max_retries=1,"
            "retry_backoff_s=0,num_concurrent=1",
        )
    recs = [s["accuracy"] for s in out["samples"]["koala_sqa_click"]]
    failed = [r for r in recs if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["prediction"] is None
    assert failed[0]["error"].startswith("[LMMS_EVAL_REQUEST_FAILED")
    assert all(r["status"] == "ok" for r in recs if r is not failed[0])
