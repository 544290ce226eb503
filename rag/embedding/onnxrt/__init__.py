"""The runtime layer both ONNX embedders share (multilingual-e5 in ``rag.e5onnx``,
EmbeddingGemma in ``rag.gemma``): session options and thread count (``session``),
tokenizer loading (``tokenizer``), the graph-building helpers (``graph``), windowed,
length-batched mean pooling over a session (``encoder``) and the cache of built
model folders (``cache``). A model package adds only what is its own: its weights
reader, its graph, its tokenizer quirks and its prompts.

This package declares no ``BACKENDS``: the registry imports it and finds none.
"""
