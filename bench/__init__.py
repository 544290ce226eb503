"""``rag bench``: ingestion speed, answer latency and scale, measured in one run.

Every figure is measured in the same run as its baseline (a plain LlamaIndex
pipeline, the CPU's own float32 matrix-multiply rate), so results compare across
machines. Tests only smoke-run it; no test asserts a time.
"""
