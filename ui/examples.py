"""Example questions, kept beside the documents they are about (``examples.json``).

A corpus folder may hold ``examples.json``: ``{"examples": [{"question": ..., "lang": ...}]}``
(a bare list of strings works too). The app offers them as one-tap buttons, so a
newcomer's first question is one that the documents can answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.display import display_name

log = logging.getLogger(__name__)
EXAMPLES_FILE = "examples.json"
MAX_EXAMPLES = 6
MAX_CHARS = 200


@dataclass(frozen=True)
class Example:
    question: str
    lang: str = ""


def _parse(data: object) -> list[Example]:
    items = data.get("examples", []) if isinstance(data, dict) else data
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            item = {"question": item}
        if isinstance(item, dict) and isinstance(item.get("question"), str):
            question = " ".join(item["question"].split())[:MAX_CHARS]
            if question:
                out.append(Example(question, str(item.get("lang") or "")[:8]))
    return out


def load_examples(folders: Iterable[str | Path]) -> list[Example]:
    """The examples of every folder that has an ``examples.json``, de-duplicated, at most six.

    A broken file is logged and skipped: examples are a nicety, never a reason to fail.
    """
    seen: set[str] = set()
    out: list[Example] = []
    for folder in dict.fromkeys(Path(f) for f in folders):
        path = folder / EXAMPLES_FILE
        if not path.is_file():
            continue
        try:
            examples = _parse(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", display_name(str(path)), exc)
            continue
        for ex in examples:
            if ex.question not in seen:
                seen.add(ex.question)
                out.append(ex)
    return out[:MAX_EXAMPLES]
