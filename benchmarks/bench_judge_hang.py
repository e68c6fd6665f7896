"""How long ``koala-bench score`` waits for a SIF judge that never answers.

    python benchmarks/bench_judge_hang.py [--answers 40] [--variants 2] [--timeout 2]

A TCP server on 127.0.0.1 reads every request and never answers. A run folder holds
``--answers`` SIF answers in each of ``--variants`` prompt variants. ``score --judge-url`` runs
with ``--judge-timeout`` and every other judge option at its default (concurrency 8, 4 retries
with backoff, breaker 8). Printed: the wall time, the exit status, the chat requests the server
saw (attempts included) and the SIF answers left not judged. Without the time-out option and the
breaker (before issue 23) every answer waited 60 s x 5 attempts, the variants one after the
other.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def hanging_server() -> tuple[str, list[str], socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    seen: list[str] = []

    def read(conn: socket.socket) -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            seen.append(data.split(b"\r\n", 1)[0].decode())
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=read, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}/v1", seen, sock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--answers", type=int, default=40)
    ap.add_argument("--variants", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()

    from test_score_honest import make_run, record

    from koala import score

    recs = []
    for v in range(args.variants):
        for k in range(args.answers):
            r = record("sif_kudge", f"i{k}", f"답 {v} {k}", task="sif", variant=f"k{v}")
            r["ref"] = {"instruction": f"지시 {k}"}
            recs.append(r)
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp) / "run", recs)
        url, seen, sock = hanging_server()
        t0 = time.perf_counter()
        rc = score.main(
            [str(run), "--judge-url", url, "--judge-timeout", str(args.timeout),
             "--st-metrics", "bleu"]
        )  # fmt: skip
        took = time.perf_counter() - t0
        sock.close()
        c = json.loads((run / "scores.json").read_text())["models"]["m"]["configs"]["sif_kudge"]
        failed = sum(v["gen"].get("num_judge_failed", 0) for v in c["variants"].values())
    chat = sum("chat/completions" in s for s in seen)
    print(
        f"{args.answers * args.variants} SIF answers, judge never answers, --judge-timeout "
        f"{args.timeout:g}: score took {took:.1f} s, exit status {rc}, {chat} chat requests "
        f"seen (attempts included), {failed} answers not judged"
    )


if __name__ == "__main__":
    main()
