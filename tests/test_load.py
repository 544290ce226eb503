"""Load: 20 simulated users ask the real app at once for a minute, over loopback.

Each user is a thread with its own HTTP connection and Gradio session, calling the public
``/ask`` endpoint through Gradio's REST API (``POST /gradio_api/call/ask`` then its event
stream). Measured on this 2-core machine, 20 ``gradio_client.Client`` threads spent about
one CPU second per wall second in the test process itself, starving the server under
test; raw HTTP costs about 0.07 s per second, so the numbers describe the app, not the client.

Every reply must be a well-formed answer to the question that user asked (no errors, no
mixed-up replies), and the server's memory must stay flat once warm. The run length is
``RAG_LOAD_SECONDS`` (default 60); figures go to ``artifacts/load_test.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.config import DEFAULT_CORPUS, Settings
from rag.engine import DECLINE_TEXT
from tests.processes import child_pid, rss_mb
from tests.ui_helpers import running_app

# Read at import: the autouse ``_isolated_env`` fixture removes every RAG_* variable per test.
LOAD_SECONDS = float(os.environ.get("RAG_LOAD_SECONDS", "60"))
USERS = 20
TOP_K = 5
REQUEST_TIMEOUT_S = 60.0  # one request, queue wait included; the queue serialises 20 users
MAX_REQUESTS_PER_USER = 2000  # a bound on count as well as time (~60 are expected per user)
SAMPLE_EVERY_S = 2.0
# Memory bounds. The whole run may grow by 30 % of the warm RSS or 150 MB, whichever is
# larger; that alone only catches a leak of ≳130 KB per request in a minute (~1000 requests),
# so the second half of the run may add at most 10 MB (or 3 %), where a healthy run adds
# ~1 MB. Sending a new session hash with every request (Gradio then keeps ~50 KB per
# session) was caught by this second bound (+21 MB) and passed the first (+41 MB).
GROWTH_FRACTION, GROWTH_FLOOR_MB = 0.30, 150.0
LATE_GROWTH_FRACTION, LATE_GROWTH_FLOOR_MB = 0.03, 10.0

CORPUS_FILES = frozenset(p.name for p in DEFAULT_CORPUS.iterdir() if p.is_file())
QUESTIONS = [  # about the sample corpus (NATO–Russia talks, January 2022), and beyond it
    "What did Russia demand from NATO?",
    "What security guarantees were discussed at the talks?",
    "Who took part in the meeting between NATO and Russia?",
    "What did the NATO Secretary General say after the talks?",
    "Czego Rosja żądała od NATO?",
    "Jakie stanowisko zajęły Stany Zjednoczone w rozmowach?",
    "Gdzie odbyły się rozmowy Rosji z NATO?",
    "Ce a cerut Rusia în privința arhitecturii de securitate?",
    "Ce țări sunt menționate în declarațiile Ministerului de Externe de la Moscova?",
    "Чего требовала Россия на переговорах с НАТО?",
    "What is the boiling point of tungsten in kelvin?",
    "Jaki jest najlepszy przepis na pierogi ruskie?",
    "Care este cel mai înalt munte din România?",
    "Who won the football World Cup in 1966?",
]


@dataclass
class Tally:
    """Results shared by the user threads; ``lock`` guards every field."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answered: int = 0
    declined: int = 0

    def record(self, latency_s: float, problem: str | None, declined: bool) -> None:
        with self.lock:
            if problem:
                self.errors.append(problem)
                return
            self.latencies_s.append(latency_s)
            self.declined += declined
            self.answered += not declined


def ask(http: httpx.Client, base: str, session: str, question: str) -> dict[str, Any]:
    """One ``/ask`` call over Gradio's REST API; raises on any error event or bad reply."""
    posted = http.post(f"{base}gradio_api/call/ask",
                       json={"data": [question, TOP_K, ""], "session_hash": session})
    posted.raise_for_status()
    event_id = posted.json()["event_id"]
    event = ""
    with http.stream("GET", f"{base}gradio_api/call/ask/{event_id}") as stream:
        stream.raise_for_status()
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = line.removeprefix("data:").strip()
                if event == "error":
                    raise RuntimeError(f"error event: {data[:300]}")
                return json.loads(data)[0]
    raise RuntimeError(f"the event stream ended without a result (last event {event!r})")


def problem_with(reply: Any, question: str) -> str | None:
    """Why ``reply`` is not a well-formed answer to ``question``; None when it is one."""
    if not isinstance(reply, dict) or not {"answer", "declined", "citations"} <= set(reply):
        return f"not an answer object: {str(reply)[:200]}"
    if reply.get("question") != question:
        return f"reply to another question: {reply.get('question')!r} for {question!r}"
    text, citations = reply["answer"], reply["citations"]
    if not isinstance(text, str) or not text.strip():
        return "empty answer text"
    if reply["declined"]:
        return None if text == DECLINE_TEXT and not citations else f"odd decline: {text[:200]}"
    if not citations:
        return f"an answer without citations: {text[:200]}"
    for c in citations:
        if c.get("source") not in CORPUS_FILES or f"[{c.get('n')}]" not in text:
            return f"citation {c} does not match the corpus or the answer text"
    return None


def user(base: str, index: int, deadline: float, max_requests: int, tally: Tally) -> None:
    """One simulated person: questions back to back, in their own session, until time's up."""
    session = f"load-user-{index}"  # the same session in the warm-up and the measured run
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as http:
        for n in range(max_requests):
            if time.monotonic() >= deadline:
                return
            question = QUESTIONS[(index * 5 + n) % len(QUESTIONS)]
            started = time.perf_counter()
            try:
                reply = ask(http, base, session, question)
                problem = problem_with(reply, question)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none escapes
                reply, problem = None, f"{type(exc).__name__}: {str(exc)[:300]}"
            declined = isinstance(reply, dict) and bool(reply.get("declined"))
            tally.record(time.perf_counter() - started, problem, declined)


def run_users(base: str, seconds: float, max_requests: int) -> Tally:
    """``USERS`` threads at once; joined within the deadline plus one request's timeout."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=user, args=(base, i, deadline, max_requests, tally),
                                daemon=True) for i in range(USERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT_S + 5)
    assert not any(t.is_alive() for t in threads), "a user thread hung past its deadline"
    return tally


class RssSampler(threading.Thread):
    """Samples the server's VmRSS every ``SAMPLE_EVERY_S`` while the load runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self.done = threading.Event()
        self._t0 = time.monotonic()

    def sample(self) -> float:
        mb = rss_mb(self.pid)
        self.samples.append((round(time.monotonic() - self._t0, 1), round(mb, 1)))
        return mb

    def run(self) -> None:
        while not self.done.wait(SAMPLE_EVERY_S):
            self.sample()


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


@pytest.mark.slow
def test_twenty_concurrent_users_for_a_minute(sample_settings: Settings, tmp_path: Path,
                                             artifacts_dir: Path) -> None:
    data = Path(sample_settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    with running_app(Path(sample_settings.chroma.dir), data, tmp_path / "serve.log") as base:
        pid = child_pid("serve", "--port", base.rstrip("/").rsplit(":", 1)[1])
        warm = run_users(base, seconds=REQUEST_TIMEOUT_S, max_requests=1)  # sessions, caches
        assert not warm.errors, warm.errors[:5]

        sampler = RssSampler(pid)
        rss_start = sampler.sample()
        sampler.start()
        started = time.monotonic()
        tally = run_users(base, LOAD_SECONDS, MAX_REQUESTS_PER_USER)
        elapsed = time.monotonic() - started
        sampler.done.set()
        sampler.join()
        rss_end = sampler.sample()

    requests = len(tally.latencies_s) + len(tally.errors)
    half = next(mb for t, mb in sampler.samples if t >= sampler.samples[-1][0] / 2)
    allowed = max(GROWTH_FRACTION * rss_start, GROWTH_FLOOR_MB)
    late_allowed = max(LATE_GROWTH_FRACTION * rss_start, LATE_GROWTH_FLOOR_MB)
    latencies = tally.latencies_s or [0.0, 0.0]
    figures = {
        "users": USERS, "seconds": round(elapsed, 1), "requests": requests,
        "errors": len(tally.errors), "answered": tally.answered, "declined": tally.declined,
        "throughput_rps": round(requests / elapsed, 2),
        "latency_ms": {"p50": round(percentile(latencies, 50) * 1000),
                       "p95": round(percentile(latencies, 95) * 1000),
                       "max": round(max(latencies) * 1000)},
        "rss_mb": {"start": round(rss_start, 1), "end": round(rss_end, 1),
                   "half": half, "max": max(mb for _, mb in sampler.samples),
                   "allowed_growth": round(allowed, 1),
                   "allowed_late_growth": round(late_allowed, 1)},
        "rss_samples": sampler.samples,
        "first_errors": tally.errors[:10],
    }
    (artifacts_dir / "load_test.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "rss_samples"}, indent=2))

    failed = f"{len(tally.errors)} of {requests} requests failed: {tally.errors[:5]}"
    assert not tally.errors, failed
    assert requests >= USERS * 2, f"only {requests} requests in {elapsed:.0f} s"
    assert rss_end - rss_start < allowed, f"RSS grew {rss_start:.0f} → {rss_end:.0f} MB"
    assert rss_end - half < late_allowed, f"RSS still climbing: {half:.0f} → {rss_end:.0f} MB"
