"""The LlamaIndex integration, exercised with LlamaIndex's own classes.

The retriever is real (our store on disk, the e5 model from its package). No LLM can
run on the test machines, so the LLMs here are test doubles: LlamaIndex's ``MockLLM``
(echoes its prompt, or says "text" N times) and ``ScriptedLLM`` below (a ``CustomLLM``
that replies with a fixed text and records the prompt it was sent).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from llama_index.core.chat_engine import CondensePlusContextChatEngine
from llama_index.core.evaluation import RetrieverEvaluator
from llama_index.core.evaluation.retrieval.metrics import MRR, HitRate
from llama_index.core.llms import (
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
    MockLLM,
)
from llama_index.core.query_engine import RetrieverQueryEngine

from rag.config import PROJECT_ROOT, Settings
from rag.engine import Engine
from rag.llamaindex import FileLevelPostprocessor, RagRetriever

QUESTION = "What did Russia demand about 1997?"
EXPECTED = "003_f0b8fe8fdb47aa20.txt"
DEV_SET = PROJECT_ROOT / "eval" / "dev.jsonl"
REPLY = "Russia demanded a return to the 1997 security architecture [1]."


class ScriptedLLM(CustomLLM):
    """Test double: replies ``reply`` (streamed in 5-character pieces), keeps the prompts."""

    reply: str = REPLY
    prompts: ClassVar[list[str]] = []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted")

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        return CompletionResponse(text=self.reply)

    def stream_complete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponseGen:
        self.prompts.append(prompt)
        for i in range(0, len(self.reply), 5):
            yield CompletionResponse(text=self.reply[: i + 5], delta=self.reply[i : i + 5])


def files(nodes: Sequence[Any]) -> list[str]:
    return [n.node.metadata["file_name"] for n in nodes]


def test_retriever_nodes_carry_file_language_score_and_sentence(sample_engine: Engine) -> None:
    nodes = RagRetriever(sample_engine, top_k=5).retrieve(QUESTION)
    assert len(nodes) == 5 and files(nodes)[0] == EXPECTED
    best = nodes[0]
    assert best.node.metadata["language"] == "ro" and best.score > 0.8
    assert "1997" in best.node.metadata["best_sentence"]
    assert best.node.metadata["best_sentence"] in best.node.get_content()
    assert [n.score for n in nodes] == sorted((n.score for n in nodes), reverse=True)
    by_file = FileLevelPostprocessor().postprocess_nodes(nodes)
    assert [n.node.node_id for n in by_file] == list(dict.fromkeys(files(nodes)))
    assert [n.node.node_id for n in FileLevelPostprocessor(top_n=1).postprocess_nodes(nodes)] \
        == [EXPECTED]


def test_retriever_query_engine_answers_the_1997_question(sample_engine: Engine) -> None:
    query_engine = RetrieverQueryEngine.from_args(RagRetriever(sample_engine), llm=MockLLM())
    response = query_engine.query(QUESTION)
    assert files(response.source_nodes)[0] == EXPECTED
    # MockLLM echoes its prompt: the context LlamaIndex built holds our passage and file name
    assert "file_name: 003_f0b8fe8fdb47aa20.txt" in str(response)
    assert "arhitectura de securitate din anul 1997" in str(response)


def test_condense_plus_context_chat_engine(sample_engine: Engine) -> None:
    chat = CondensePlusContextChatEngine.from_defaults(RagRetriever(sample_engine),
                                                       llm=MockLLM())
    first = chat.chat(QUESTION)
    assert files(first.source_nodes)[0] == EXPECTED
    follow_up = chat.chat("And what did NATO answer?")  # condensed (by the echoing MockLLM)
    assert follow_up.source_nodes and len(chat.chat_history) == 4


def test_retriever_evaluator_matches_rag_eval(sample_engine: Engine) -> None:
    """LlamaIndex's RetrieverEvaluator, at file level, gives rag eval's hit@1, hit@k, MRR.

    rag eval's side goes through its own functions (``evaluate_answer``, ``score_question``,
    ``summarize``) on the engine's answers; only its groundedness scoring is left out,
    which the retrieval figures do not use.
    """
    from rag.eval.metrics import load_questions, score_question, summarize
    from rag.eval.runner import evaluate_answer

    k = sample_engine.settings.top_k
    questions = [q for q in load_questions(DEV_SET) if q.answerable]
    rag_rows = []
    for q in questions:
        answer = sample_engine.ask(q.question, answerer="extractive")
        rag_rows.append(score_question(evaluate_answer(q, answer, None, None, 0.0)[0], k))
    rag_eval = summarize(rag_rows, [])

    evaluator = RetrieverEvaluator(metrics=[HitRate(), MRR()],
                                   retriever=RagRetriever(sample_engine, top_k=k),
                                   node_postprocessors=[FileLevelPostprocessor()])
    rows: list[dict[str, float]] = []
    for q in questions:
        result = evaluator.evaluate(q.question, list(q.sources))
        # hit@1: the same HitRate on the best file only (FileLevelPostprocessor(top_n=1)
        # in a second evaluator gives the same, at the cost of retrieving again)
        top = HitRate().compute(expected_ids=list(q.sources),
                                retrieved_ids=result.retrieved_ids[:1])
        rows.append({"hit@k": result.metric_vals_dict["hit_rate"],
                     "mrr": result.metric_vals_dict["mrr"], "hit@1": top.score})
    assert len(rows) == 60
    for metric in ("hit@1", "hit@k", "mrr"):
        llama_index = sum(r[metric] for r in rows) / len(rows)
        assert llama_index == pytest.approx(rag_eval[metric], abs=1e-12), metric
    assert 0.5 < rag_eval["hit@1"] < rag_eval["hit@k"]  # the figures are not degenerate


def test_llamaindex_answerer_from_configuration(sample_settings: Settings) -> None:
    sample_settings.llamaindex.llm = f"{__name__}.ScriptedLLM"  # RAG_LLAMAINDEX_LLM
    sample_settings.llamaindex.llm_kwargs = json.dumps({"reply": REPLY})
    sample_settings.answerer = "llamaindex"
    sample_settings.llm.model_path = "/nonexistent/model.gguf"  # no local model offered
    engine = Engine(sample_settings)
    assert engine.answerer_names() == ["llamaindex", "extractive"]
    ScriptedLLM.prompts.clear()
    answer = engine.ask(QUESTION)
    assert answer.answerer == "llamaindex:ScriptedLLM" and answer.fallback_reason is None
    assert answer.citations[0].source == EXPECTED
    assert "1997" in ScriptedLLM.prompts[-1] and "[1]" in ScriptedLLM.prompts[-1]
    events = list(engine.ask_stream(QUESTION))
    assert "".join(e for e in events if isinstance(e, str)) == REPLY
    assert events[-1].citations[0].source == EXPECTED


@pytest.mark.parametrize(("llm", "kwargs", "reason"), [
    ("llama_index.core.llms.MockLLM", {"max_tokens": 3}, "cited none of the passages"),
    ("llama_index.llms.nosuch.Model", {}, "cannot import llama_index.llms.nosuch"),
    ("rag.engine.Engine", {}, "is not a LlamaIndex LLM class"),
    ("llama_index.core.llms.MockLLM", {"api_key": "sk-li-secret"}, "cannot create MockLLM"),
])
def test_llamaindex_answerer_failures_fall_back(sample_settings: Settings, llm: str,
                                                kwargs: dict[str, Any], reason: str) -> None:
    sample_settings.llamaindex.llm = llm
    sample_settings.llamaindex.llm_kwargs = json.dumps(kwargs)
    sample_settings.answerer = "llamaindex"
    answer = Engine(sample_settings).ask(QUESTION)
    assert answer.answerer == "extractive (fallback)" and reason in answer.fallback_reason
    assert "sk-li-secret" not in answer.fallback_reason and "\n" not in answer.fallback_reason
    assert answer.citations[0].source == EXPECTED


def test_cold_rag_ask_imports_neither_llama_index_nor_openai(sample_settings: Settings) -> None:
    script = (
        "import sys; from rag.cli import main; rc = main(['ask', '--json', sys.argv[1]]); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'llama_index', 'openai'}))"
    )
    env = {"RAG_CHROMA_DIR": sample_settings.chroma.dir, "RAG_DATA_DIR": sample_settings.data_dir}
    out = subprocess.run([sys.executable, "-c", script, QUESTION], capture_output=True,
                         text=True, timeout=120, env={**_base_env(), **env}, check=True)
    answer_line, modules_line = out.stdout.strip().splitlines()[-2:]
    assert json.loads(answer_line)["citations"][0]["source"] == EXPECTED
    assert modules_line == "[]"


def _base_env() -> dict[str, str]:
    from tests.processes import clean_env

    return clean_env()
