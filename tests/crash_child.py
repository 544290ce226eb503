"""A child process for the SIGKILL tests: loads everything, says "ready", then does one
ingest or delete, so the parent's kill lands inside the write and not in start-up.

Usage: python -m tests.crash_child CHROMA_DIR ingest FOLDER | delete NAME...
Small write batches (``FLUSH_SENTENCES``) make every file a multi-batch "large file" write.
"""

from __future__ import annotations

import sys

import rag.ingest
from rag.config import Settings
from rag.engine import Engine


def main(argv: list[str]) -> None:
    chroma_dir, op, *args = argv
    rag.ingest.FLUSH_SENTENCES = 8
    engine = Engine(Settings(chroma_dir=chroma_dir))
    engine.embedder.embed_passages(["warm-up"])
    engine.store.open_for(engine.embedder)
    print("ready", flush=True)
    if op == "ingest":
        engine.ingest(args, prune=True)
    else:
        for name in args:
            engine.delete(name)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
