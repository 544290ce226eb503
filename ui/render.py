"""HTML for the chat app, built from escaped text only.

Documents are untrusted: a file may hold ``<script>`` or ``<img onerror>``. Every
piece of document, question or error text goes through ``esc`` before it meets
markup, so the Chatbot's own sanitiser is a second line of defence, not the first.
Each message is one ``<div>`` without blank lines, so Markdown leaves it alone
(a CommonMark HTML block ends only at a blank line).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rag.types import Answer, Citation

LANGUAGES = {
    "bg": "Bulgarian", "cs": "Czech", "de": "German", "en": "English", "es": "Spanish",
    "fr": "French", "hu": "Hungarian", "it": "Italian", "nl": "Dutch", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "uk": "Ukrainian",
    "und": "unknown language",
}
QUOTE_CHARS = 280
_MARKER = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")


def esc(text: object) -> str:
    """Escape text for HTML and turn line breaks into ``<br>`` (no blank lines survive)."""
    escaped = html.escape(str(text), quote=True)
    return re.sub(r"\r\n|\r|\n", "<br>", escaped)


def language_name(code: str | None) -> str:
    """'ro' → 'Romanian (ro)'; unknown codes are shown as given."""
    code = (code or "und").strip() or "und"
    name = LANGUAGES.get(code.lower())
    return f"{name} ({code})" if name and code != "und" else (name or code)


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def highlight(passage: str, sentence: str) -> str:
    """The escaped passage with the cited sentence wrapped in ``<mark>``.

    Falls back to a whitespace-insensitive match, then to the passage followed by
    the marked sentence, so the cited words are always visible.
    """
    passage, sentence = passage or "", (sentence or "").strip()
    if not sentence:
        return esc(passage)
    start = passage.find(sentence)
    if start >= 0:
        end = start + len(sentence)
        return esc(passage[:start]) + f"<mark>{esc(sentence)}</mark>" + esc(passage[end:])
    flat_passage, flat_sentence = " ".join(passage.split()), " ".join(sentence.split())
    start = flat_passage.find(flat_sentence)
    if start >= 0:
        end = start + len(flat_sentence)
        return (esc(flat_passage[:start]) + f"<mark>{esc(flat_sentence)}</mark>"
                + esc(flat_passage[end:]))
    if not passage:
        return f"<mark>{esc(sentence)}</mark>"
    return esc(passage) + f"<br>… <mark>{esc(sentence)}</mark>"


def with_markers(escaped: str) -> str:
    """Style ``[n]`` markers in already-escaped text (brackets and digits survive escaping)."""
    return _MARKER.sub(r'<span class="rag-marker">[\1]</span>', escaped)


def citation_html(c: Citation) -> str:
    """One source: file, language and quote always visible; the passage on expanding."""
    return (
        '<details class="rag-source">'
        f'<summary><span class="rag-marker">[{c.n}]</span> '
        f'<span class="rag-file">{esc(c.source)}</span> · '
        f'<span class="rag-lang">{esc(language_name(c.language))}</span> · '
        f'<span class="rag-score">score {c.score:.2f}</span>'
        f'<br><q class="rag-quote"><mark>{esc(shorten(c.text))}</mark></q></summary>'
        f'<blockquote class="rag-passage">{highlight(c.passage_text, c.text)}</blockquote>'
        "</details>"
    )


def answer_html(answer: Answer, show_searched: bool = True) -> str:
    """The finished answer: text with markers, sources, searched-for line, answerer note."""
    parts = ['<div class="rag-answer">']
    if answer.declined:
        parts.append(f'<div class="rag-declined">{esc(answer.answer)}</div>')
    else:
        parts.append(f'<div class="rag-text">{with_markers(esc(answer.answer))}</div>')
    if answer.citations:
        parts.append('<div class="rag-sources"><div class="rag-sources-title">Sources</div>')
        parts.extend(citation_html(c) for c in answer.citations)
        parts.append("</div>")
    if show_searched and answer.standalone_question:
        parts.append(
            f'<div class="rag-searched">searched for: {esc(answer.standalone_question)}</div>'
        )
    note = f"answered by <b>{esc(answer.answerer)}</b> in {answer.latency_ms:.0f} ms"
    if answer.fallback_reason:
        note += f" — fell back because {esc(answer.fallback_reason)}"
    css = "rag-note rag-fallback" if answer.fallback_reason else "rag-note"
    parts.append(f'<div class="{css}">{note}</div></div>')
    return "".join(parts)


def streaming_html(partial: str) -> str:
    """The answer while it streams in: escaped text and a cursor."""
    return (f'<div class="rag-answer rag-streaming"><div class="rag-text">'
            f"{with_markers(esc(partial))} …</div></div>")


def error_html(message: str) -> str:
    return f'<div class="rag-answer rag-error">{esc(message)}</div>'


def user_html(question: str) -> str:
    return esc(question)


def documents_html(files: Sequence[Mapping[str, Any]]) -> str:
    """The files in the store as a table (name, chunks, language)."""
    if not files:
        return '<div class="rag-docs rag-empty">No documents yet: upload some below.</div>'
    rows = "".join(
        f'<tr><td class="rag-file">{esc(f.get("source") or "")}</td>'
        f'<td class="rag-num">{int(f.get("chunks") or 0)}</td>'
        f'<td>{esc(language_name(f.get("language")))}</td></tr>'
        for f in files
    )
    total = sum(int(f.get("chunks") or 0) for f in files)
    return (
        '<table class="rag-docs"><thead><tr><th>File</th><th>Chunks</th><th>Language</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
        f'<div class="rag-note">{len(files)} files, {total} chunks</div>'
    )


def report_html(lines: Iterable[str]) -> str:
    """The outcome of an upload or removal, one escaped line each."""
    return "".join(f'<div class="rag-report-line">{esc(line)}</div>' for line in lines)
