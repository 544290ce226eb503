"""Moved to ``rag.groundedness`` (the engine checks free-form LLM answers at run time).

Kept so ``eval.groundedness`` imports keep working; the core never imports ``eval``.
"""

from rag.groundedness import (  # noqa: F401
    BOILERPLATE_PREFIXES,
    DEFAULT_THRESHOLD,
    MARKER,
    Claim,
    Grounder,
    Grounding,
    SentenceSupport,
    answer_claims,
    claim_units,
    clean,
    is_boilerplate,
    markers,
    passage_sentences,
)
