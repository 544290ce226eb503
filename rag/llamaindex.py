"""LlamaIndex integration: our cross-lingual retriever as a LlamaIndex ``BaseRetriever``.

A LlamaIndex user gets what the engine retrieves (sentence search widened to chunks,
multilingual-e5 with its query/passage roles, Chroma) inside any LlamaIndex pipeline:
``RetrieverQueryEngine``, ``CondensePlusContextChatEngine``, ``RetrieverEvaluator``.
Each ``NodeWithScore`` carries the chunk text, its file, language and score, and the
sentence that matched best. This module imports ``llama_index``; nothing on the
``rag ask`` path imports it.

Usage::

    from llama_index.core.query_engine import RetrieverQueryEngine
    from rag.llamaindex import RagRetriever

    retriever = RagRetriever.from_settings(top_k=5)
    engine = RetrieverQueryEngine.from_args(retriever, llm=my_llm)  # pass llm explicitly
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.config import Settings
from rag.engine import Engine
from rag.types import Passage

# Shown to an LLM with the text (so it can name the file); the rest is for programs.
HIDDEN_FROM_LLM = ["path", "best_sentence", "position", "support", "rank"]


def passage_node(passage: Passage, support: float) -> NodeWithScore:
    """A retrieved passage as a LlamaIndex node; the node id is our chunk id."""
    node = TextNode(
        id_=passage.chunk_id,
        text=passage.text,
        metadata={
            "file_name": passage.source,
            "language": passage.language,
            "path": passage.path,
            "best_sentence": passage.sentence or "",
            "position": passage.position,
            "support": round(support, 4),
            "rank": passage.n,
        },
        excluded_llm_metadata_keys=HIDDEN_FROM_LLM,
        excluded_embed_metadata_keys=HIDDEN_FROM_LLM,
    )
    return NodeWithScore(node=node, score=passage.score)


class RagRetriever(BaseRetriever):
    """Retrieves from our store through ``Engine.retriever`` (same passages as ``rag ask``).

    ``support`` in each node's metadata is the engine's answerability signal (best
    sentence similarity); the engine declines below its threshold, a LlamaIndex
    pipeline may use it the same way or not at all.
    """

    def __init__(self, engine: Engine, top_k: int = 5,
                 callback_manager: CallbackManager | None = None) -> None:
        self._engine = engine
        self._top_k = max(1, min(int(top_k), 50))
        super().__init__(callback_manager=callback_manager)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, top_k: int | None = None,
                      **kwargs: Any) -> RagRetriever:
        """A retriever over the store the ``RAG_*`` settings name."""
        engine = Engine(settings or Settings())
        return cls(engine, top_k or engine.settings.top_k, **kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = " ".join(query_bundle.query_str.split())  # as the engine normalises questions
        if not query:
            return []
        retrieval = self._engine.retriever.retrieve(query, self._top_k)
        return [passage_node(p, retrieval.support) for p in retrieval.passages]


class FileLevelPostprocessor(BaseNodePostprocessor):
    """One node per file, best first, with the file name as node id.

    ``rag eval`` scores retrieval at file level (several chunks of one article must not
    push another article down); with this postprocessor LlamaIndex's ``RetrieverEvaluator``
    and its ``HitRate``/``MRR`` compute exactly those figures. ``top_n=1`` gives hit@1.
    """

    top_n: int | None = None

    @classmethod
    def class_name(cls) -> str:
        return "FileLevelPostprocessor"

    def _postprocess_nodes(self, nodes: list[NodeWithScore],
                           query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        seen: dict[str, NodeWithScore] = {}
        for item in nodes:
            name = str(item.node.metadata.get("file_name") or item.node.node_id)
            if name not in seen:
                seen[name] = NodeWithScore(node=TextNode(id_=name, text=item.node.get_content(),
                                                         metadata=dict(item.node.metadata)),
                                           score=item.score)
        files = list(seen.values())
        return files[: self.top_n] if self.top_n else files
