"""A child process for the SIGKILL tests: loads everything, says "ready", then does one
ingest or delete, so the parent's kill lands inside the write and not in start-up.

Usage: python -m tests.crash_child CHROMA_DIR ingest FOLDER | delete NAME...
Small write batches (``FLUSH_SENTENCES``) make every file a multi-batch "large file" write.
With ``KILL_AFTER_WRITES=N`` the child kills itself (SIGKILL) right after its N-th write
to Chroma, so a test can stop it between any two writes; at the end it prints how many
writes it made ("done N").
"""

from __future__ import annotations

import os
import signal
import sys

import rag.ingest
from rag.config import Settings
from rag.engine import Engine

WRITES = ("add", "upsert", "update", "delete")  # the Collection methods that change a store


def count_writes(kill_after: int) -> list[int]:
    """Count every write to any Chroma collection; SIGKILL right after write ``kill_after``."""
    from chromadb.api.models.Collection import Collection

    done = [0]

    def counted(original):
        def write(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            done[0] += 1
            if done[0] == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return write

    for name in WRITES:
        setattr(Collection, name, counted(getattr(Collection, name)))
    return done


def main(argv: list[str]) -> None:
    chroma_dir, op, *args = argv
    rag.ingest.FLUSH_SENTENCES = 8
    engine = Engine(Settings(chroma_dir=chroma_dir))
    engine.embedder.embed_passages(["warm-up"])
    engine.store.open_for(engine.embedder)
    writes = count_writes(int(os.environ.get("KILL_AFTER_WRITES", "0")))
    print("ready", flush=True)
    if op == "ingest":
        engine.ingest(args, prune=True)
    else:
        for name in args:
            engine.delete(name)
    print(f"done {writes[0]}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
