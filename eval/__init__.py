"""Grounding evaluation: is the right file found, cited, quoted faithfully, or declined?

``eval.metrics`` holds pure metric functions (no engine, testable by hand),
``rag.groundedness`` the model-free support check with the multilingual e5
model, ``eval.judge`` the optional LLM judge, and ``eval.runner`` the
``rag eval`` command that runs a question file through the engine.
"""
