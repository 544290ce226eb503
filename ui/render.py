"""HTML for the chat app, built from escaped text only.

Documents are untrusted: a file may hold ``<script>`` or ``<img onerror>``. Every
piece of document, question or error text goes through ``esc`` before it meets
markup, and no output holds a raw line break. Answers are rendered from plain dicts
(``answer_record``), the form the browser keeps across reloads, and read with
``.get`` so fields added to ``Answer`` later neither break old conversations nor
need changes here.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rag.answering.claims import with_marker
from rag.display import display_name, language_name
from rag.documents import DocumentInfo
from rag.markers import group_numbers, marker_numbers, replace_markers
from rag.types import Answer

QUOTE_CHARS = 280
# Plain words for the similarity score of multilingual-e5 (cosine; answers below ~0.81
# are declined): bands chosen on the sample corpus, the raw score stays in a tooltip.
STRENGTH = ((0.87, "strong match"), (0.83, "good match"), (float("-inf"), "partial match"))
INTRO = ("Ask a question about the documents, in any language. Answers quote the "
         "documents and cite them like [1]: tap a number to see its source.")


def esc(text: object) -> str:
    """Escape text for HTML and turn line breaks into ``<br>`` (no blank lines survive)."""
    escaped = html.escape(str(text), quote=True)
    return re.sub(r"\r\n|\r|\n", "<br>", escaped)


def esc_name(name: str) -> str:
    """A file name for the page: one line of visible characters, HTML-escaped."""
    return esc(display_name(name))


def attr(text: object) -> str:
    """Escape text for an attribute value (line breaks kept, as character references)."""
    return html.escape(str(text), quote=True).replace("\n", "&#10;")


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1e6:.1f} MB"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def strength(score: float) -> str:
    return next(words for floor, words in STRENGTH if score >= floor)


def highlight(passage: str, sentence: str) -> str:
    """The escaped passage with the cited sentence wrapped in ``<mark>``.

    Falls back to a whitespace-insensitive match, then to the passage followed by
    the marked sentence, so the cited words are always visible.
    """
    passage, sentence = passage or "", (sentence or "").strip()
    if not sentence:
        return esc(passage)
    for hay, needle in ((passage, sentence),
                        (" ".join(passage.split()), " ".join(sentence.split()))):
        start = hay.find(needle)
        if start >= 0:
            end = start + len(needle)
            return esc(hay[:start]) + f"<mark>{esc(needle)}</mark>" + esc(hay[end:])
    if not passage:
        return f"<mark>{esc(sentence)}</mark>"
    return esc(passage) + f"<br>… <mark>{esc(sentence)}</mark>"


def _marker_button(match: re.Match[str]) -> str:
    numbers = group_numbers(match.group("body"))
    n = numbers[0] if numbers else 1
    blanks = match.group(0)[: match.start("open") - match.start()]
    return (f'{blanks}<button type="button" class="rag-marker" data-n="{n}" '
            f'aria-label="Show source {n}">[{match.group("body")}]</button>')


def with_markers(escaped: str) -> str:
    """``[n]`` markers in already-escaped text as buttons that open source ``n``
    (what counts as a marker is ``rag.markers``'s one definition)."""
    return replace_markers(escaped, _marker_button)


def answer_record(answer: Answer, titles: Mapping[str, str]) -> dict[str, Any]:
    """The answer as JSON for the browser: the ``rag ask --json`` dict plus what the
    page shows (title, language, whole passage per citation). No server paths."""
    record = answer.to_dict()
    record.pop("retrieved", None)  # not shown; keeps what the browser stores small
    record["citations"] = [
        {**d, "title": titles.get(c.source) or display_name(c.source), "language": c.language,
         "passage": c.passage_text}
        for c, d in zip(answer.citations, record["citations"], strict=True)
    ]
    return record


def citation_html(c: Mapping[str, Any]) -> str:
    """One source: title, file, language, strength and quote visible; the passage on demand."""
    n, score = int(c.get("n") or 0), float(c.get("score") or 0.0)
    source = str(c.get("source") or "")
    title = str(c.get("title") or display_name(source))
    quote = str(c.get("text") or "")
    return (
        f'<details class="rag-source" data-n="{n}">'
        f'<summary><span class="rag-n">[{n}]</span> <span class="rag-title">{esc(title)}</span>'
        f'<span class="rag-meta"><span class="rag-file">{esc_name(source)}</span> · '
        f'<span class="rag-lang">{esc(language_name(c.get("language")))}</span> · '
        f'<span class="rag-strength" title="similarity score {score:.2f}">'
        f"{strength(score)}</span></span>"
        f'<q class="rag-quote">{esc(shorten(quote))}</q>'
        '<span class="rag-more">Show the passage</span></summary>'
        f'<blockquote class="rag-passage">{highlight(str(c.get("passage") or ""), quote)}'
        "</blockquote></details>"
    )


def copy_text(record: Mapping[str, Any]) -> str:
    """What the copy button puts on the clipboard: the answer, then its sources."""
    lines = [str(record.get("answer") or "")]
    cites = record.get("citations") or []
    if cites:
        lines.append("")
        lines += [f"[{c.get('n')}] {c.get('title') or display_name(str(c.get('source')))} "
                  f"({display_name(str(c.get('source')))})"
                  for c in cites]
    return "\n".join(lines)


def _footer(record: Mapping[str, Any], show_searched: bool) -> str:
    parts = []
    searched = record.get("standalone_question")
    if show_searched and searched:
        parts.append(f'<div class="rag-searched">searched for: {esc(searched)}</div>')
    removed = record.get("removal_note")
    if removed:
        parts.append(f'<div class="rag-removed" role="note">{esc(removed)}</div>')
    note = f"answered by {esc(record.get('answerer') or '')} in " \
           f"{float(record.get('latency_ms') or 0):.0f} ms"
    reason = record.get("fallback_reason")
    if reason:
        note += f" — fell back because {esc(reason)}"
    css = "rag-note rag-fallback" if reason else "rag-note"
    parts.append(
        f'<div class="rag-footer"><span class="{css}">{note}</span>'
        f'<button type="button" class="rag-copy" data-copy="{attr(copy_text(record))}" '
        'aria-label="Copy this answer">Copy</button></div>')
    return "".join(parts)


UNSUPPORTED = "not confirmed by the cited passage"


def _sentence_html(s: Mapping[str, Any], sources: set[int]) -> str:
    """One checked sentence of an LLM answer; an unsupported one is marked, in words too.
    Markers go where the engine puts them (before the full stop), for sources shown only."""
    text = str(s.get("text") or "")
    for n in s.get("cited") or []:
        if int(n) in sources:
            text = with_marker(text, int(n))
    text = with_markers(esc(text))
    if s.get("supported", True):
        return f'<span class="rag-claim">{text}</span>'
    support = s.get("support")
    score = f" (support {float(support):.2f})" if support is not None else ""
    return (f'<span class="rag-claim rag-unsupported" title="{attr(UNSUPPORTED + score)}">'
            f'{text} <span class="rag-flag">({UNSUPPORTED})</span></span>')


GLOSS_LABEL = "Machine translation"


def gloss_html(gloss: Mapping[str, Any]) -> str:
    """A checked machine translation of a quote, labelled as such."""
    language = str(gloss.get("language") or "")
    return (f'<div class="rag-gloss" lang="{attr(language)}"><span class="rag-gloss-label">'
            f"{GLOSS_LABEL} into {esc(language_name(language))}, checked against the quote:"
            f"</span> {esc(gloss.get('text') or '')}</div>")


def _quotes_with_glosses(text: str, glosses: Sequence[Mapping[str, Any]]) -> str:
    """The extractive answer line by line, each quote's gloss under it."""
    by_n = {int(g.get("n") or 0): g for g in glosses}
    lines = []
    for line in text.split("\n"):
        under = "".join(gloss_html(by_n.pop(n)) for n in marker_numbers(line) if n in by_n)
        lines.append(f'<div class="rag-line">{with_markers(esc(line))}{under}</div>')
    return "".join(lines)


def answer_body(record: Mapping[str, Any]) -> str:
    """Declined text; an LLM answer sentence by sentence, each as checked; quotes with their
    glosses; else the text."""
    text = esc(record.get("answer") or "")
    if record.get("declined"):
        return f'<div class="rag-declined">{text}</div>'
    if record.get("status") == "not_stated":  # quotes, but marked as not an answer
        return (f'<div class="rag-not-stated"><span class="rag-not-answer">Not an answer'
                f'</span>{with_markers(text)}</div>')
    sentences = record.get("sentences") or []
    if sentences:
        sources = {int(c.get("n") or 0) for c in record.get("citations") or []}
        return ('<div class="rag-text">' + " ".join(_sentence_html(s, sources) for s in sentences)
                + "</div>")
    glosses = record.get("glosses") or []
    if glosses:
        raw = str(record.get("answer") or "")
        return f'<div class="rag-text">{_quotes_with_glosses(raw, glosses)}</div>'
    return f'<div class="rag-text">{with_markers(text)}</div>'


def answer_html(record: Mapping[str, Any], show_searched: bool = True) -> str:
    """A finished answer: text with clickable markers, sources, searched-for line, note."""
    body = answer_body(record)
    cites = record.get("citations") or []
    sources = ""
    if cites:
        sources = ('<div class="rag-sources"><div class="rag-sources-title">Sources</div>'
                   + "".join(citation_html(c) for c in cites) + "</div>")
    return (f'<div class="rag-answer" role="article" aria-label="Answer">{body}{sources}'
            f"{_footer(record, show_searched)}</div>")


def streaming_html(partial: str, status: str = "") -> str:
    """The answer while it streams in: escaped text and a cursor (or what is going on)."""
    shown = with_markers(esc(partial)) if partial or not status else \
        f'<span class="rag-status">{esc(status)}</span>'
    return (f'<div class="rag-answer rag-streaming" role="article" aria-label="Answer, '
            f'still writing" aria-busy="true"><div class="rag-text">{shown} …</div></div>')


def error_html(message: str) -> str:
    return (f'<div class="rag-answer rag-error" role="article" aria-label="Error">'
            f"{esc(message)}</div>")


def turn_html(turn: Mapping[str, Any], show_searched: bool) -> str:
    question = f'<div class="rag-user" aria-label="Your question">{esc(turn.get("question"))}</div>'
    if turn.get("error"):
        reply = error_html(str(turn["error"]))
    elif turn.get("answer") is not None:
        reply = answer_html(turn["answer"], show_searched)
    else:
        reply = streaming_html(str(turn.get("partial") or ""), str(turn.get("status") or ""))
    return f'<div class="rag-turn">{question}{reply}</div>'


def chat_html(turns: Sequence[Mapping[str, Any]], show_searched: bool = True) -> str:
    """The whole conversation, or a short how-to when it is empty."""
    if not turns:
        return f'<div class="rag-chat rag-empty"><p class="rag-intro">{esc(INTRO)}</p></div>'
    body = "".join(turn_html(t, show_searched) for t in turns)
    return f'<div class="rag-chat" role="log" aria-label="Conversation">{body}</div>'


def _languages(docs: Sequence[DocumentInfo]) -> str:
    counts: dict[str, int] = {}
    for d in docs:
        counts[language_name(d.language)] = counts.get(language_name(d.language), 0) + 1
    return ", ".join(f"{n} in {lang}" for lang, n in sorted(counts.items(), key=lambda x: -x[1]))


def _doc_item(d: DocumentInfo) -> str:
    return (f'<li class="rag-doc"><span class="rag-doc-title">{esc(d.title)}</span>'
            f'<span class="rag-doc-meta"><span class="rag-file">{esc_name(d.source)}</span> · '
            f"{esc(language_name(d.language))} · {human_size(d.size_bytes)} · "
            f"{plural(d.chunks, 'passage')}</span></li>")


def header_html(docs: Sequence[DocumentInfo]) -> str:
    """What is loaded, in one sentence, with the document titles a tap away."""
    if not docs:
        return ('<div class="rag-header"><h1>Ask your documents</h1><p class="rag-lede">'
                "No documents yet: add some under Documents.</p></div>")
    items = "".join(_doc_item(d) for d in docs)
    return (
        '<div class="rag-header"><h1>Ask your documents</h1>'
        f'<details class="rag-loaded"><summary>{plural(len(docs), "document")} loaded '
        f"({esc(_languages(docs))}) — show titles</summary>"
        f'<ul class="rag-doclist">{items}</ul></details></div>'
    )


def documents_html(docs: Sequence[DocumentInfo]) -> str:
    """The documents panel's list: title, then file, language, size and passages."""
    if not docs:
        return '<div class="rag-docs rag-empty">No documents yet: add some below.</div>'
    total = sum(d.chunks for d in docs)
    return (f'<ul class="rag-docs rag-doclist">{"".join(_doc_item(d) for d in docs)}</ul>'
            f'<div class="rag-note">{plural(len(docs), "document")}, '
            f"{plural(total, 'passage')}</div>")


def examples_html(questions: Iterable[str]) -> str:
    """One-tap example questions (the page script puts one in the box and asks it)."""
    buttons = "".join(
        f'<button type="button" class="rag-example" data-q="{attr(q)}">{esc(q)}</button>'
        for q in questions)
    if not buttons:
        return ""
    return f'<div class="rag-examples" aria-label="Example questions">{buttons}</div>'


def progress_html(done: int, total: int, name: str) -> str:
    """A progress bar the width of its panel, naming the file being added."""
    label = f"Adding {min(done + 1, total)} of {total}: {name}" if name else "Finishing…"
    return (f'<div class="rag-progress"><progress value="{done}" max="{max(total, 1)}" '
            f'aria-label="Adding documents"></progress>'
            f'<div class="rag-progress-text">{esc(label)}</div></div>')


def report_html(lines: Iterable[str], errors: Iterable[str] = ()) -> str:
    """The outcome of an upload or removal: one line each, errors marked as such."""
    ok = "".join(f'<div class="rag-report-line">{esc(line)}</div>' for line in lines)
    bad = "".join(f'<div class="rag-report-line rag-error" role="alert">{esc(line)}</div>'
                  for line in errors)
    return ok + bad
