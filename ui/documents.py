"""The documents panel: what is loaded, adding files with progress, removing with a check.

Ingestion runs in a worker thread inside its own concurrency group, so questions
keep being answered (from what is already stored) while files go in; the handler
streams a progress bar, file by file, from that thread. Every outcome is one
plain line per file; the previous outcome is cleared by the next action.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder
from rag.ui.live_engine import LiveEngine
from rag.ui.render import (
    documents_html,
    esc,
    esc_name,
    header_html,
    plural,
    progress_html,
    report_html,
)
from rag.ui.uploads import ALLOWED_SUFFIXES, Quota, discard_temp, vet_uploads

from rag.config import DEFAULT_CORPUS
from rag.display import display_name
from rag.documents import DocumentInfo, describe

log = logging.getLogger(__name__)
DOCS_QUEUE = "documents"


@dataclass
class DocumentsPanel:
    docs: gr.HTML
    files: gr.File
    report: gr.HTML
    to_remove: gr.Dropdown
    remove: gr.Button
    confirm_row: gr.Row
    confirm_text: gr.HTML
    confirm: gr.Button
    cancel: gr.Button


def documents_panel(quota: Quota) -> DocumentsPanel:
    """Build the documents column's components in the current layout context."""
    gr.HTML('<h2 class="rag-panel-title">Documents</h2>', js_on_load=None)
    docs = gr.HTML(elem_id="docs", js_on_load=None)
    kinds = ", ".join(s.lstrip(".").upper() for s in ALLOWED_SUFFIXES if s != ".htm")
    gr.HTML(f'<div id="upload-rules"><b>Add documents</b> <span class="rag-note">{esc(kinds)}; '
            f"up to {quota.file_mb:g} MB each</span></div>", js_on_load=None)
    # no visible label: on a phone Gradio draws it over the upload icon
    files = gr.File(label="Add documents", show_label=False, file_count="multiple",
                    elem_id="upload", height=110)
    report = gr.HTML(elem_id="upload-report", js_on_load=None)
    with gr.Row(equal_height=True):
        to_remove = gr.Dropdown([], label="Remove a document", elem_id="remove-file", scale=4,
                                min_width=0)
        remove = gr.Button("Remove…", elem_id="remove", size="sm", scale=1, min_width=80)
    with gr.Column(visible=False, elem_id="remove-confirm") as confirm_row:
        confirm_text = gr.HTML(js_on_load=None)
        with gr.Row():
            confirm = gr.Button("Yes, remove it", elem_id="remove-yes", variant="stop",
                                size="sm")
            cancel = gr.Button("Cancel", elem_id="remove-cancel", size="sm")
    return DocumentsPanel(docs, files, report, to_remove, remove, confirm_row, confirm_text,
                          confirm, cancel)


def _choices(docs: list[DocumentInfo]) -> list[tuple[str, str]]:
    """Remove choices labelled by file name (and title), valued by full path, so removing
    an upload never takes a same-named sample file with it."""
    names = [d.source for d in docs]
    return sorted(
        (display_name(d.source if names.count(d.source) == 1
                      else f"{d.source} ({Path(d.path).parent.name})"), d.path) for d in docs)


def _ingest_events(live: LiveEngine, paths: list[Path]) -> Iterator[Any]:
    """Progress tuples from a worker thread's ingest, then its report (or its exception)."""
    events: queue.Queue[Any] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            with live.writing() as engine:
                outcome["report"] = engine.ingest(
                    paths, progress=lambda done, total, name: events.put((done, total, name)))
        except Exception as exc:  # noqa: BLE001 - re-raised in the handler's thread
            outcome["error"] = exc
        finally:
            events.put(None)

    threading.Thread(target=work, name="ingest", daemon=True).start()
    while (event := events.get()) is not None:
        yield event
    if "error" in outcome:
        raise outcome["error"]
    yield outcome["report"]


class Documents:
    """The panel's handlers over one ``LiveEngine``."""

    def __init__(self, live: LiveEngine, uploads_dir: Path, quota: Quota, redact: Any) -> None:
        self.live, self.uploads_dir, self.quota, self.redact = live, uploads_dir, quota, redact
        self._session_bytes: dict[str, int] = {}
        self._lock = threading.Lock()

    def listing(self) -> list[DocumentInfo]:
        return describe(self.live.engine.status()["files"])

    def refresh(self) -> tuple[str, str, Any]:
        """The documents list, the header and the remove choices."""
        docs = self.listing()
        return documents_html(docs), header_html(docs), gr.Dropdown(choices=_choices(docs),
                                                                    value=None)

    def _result_lines(self, report: Any) -> tuple[list[str], list[str]]:
        chunks = {d.path: d.chunks for d in self.listing()}

        def name(path: Any) -> str:
            return display_name(Path(path).name)

        lines = [f"Added {name(p)}: {plural(chunks.get(str(p), 0), 'passage')}"
                 for p in report.added]
        lines += [f"Updated {name(p)}: {plural(chunks.get(str(p), 0), 'passage')}"
                  for p in report.updated]
        lines += [f"{name(p)} was already added and has not changed" for p in report.unchanged]
        errors = []
        for err in report.errors:
            errors.append(f"{name(err.path)} was not added: {self.redact(err.reason)}")
            if Path(err.path).resolve().parent == self.uploads_dir.resolve():
                Path(err.path).unlink(missing_ok=True)
        return lines, errors

    def _vet(self, files: list[Any] | None, who: str) -> Any:
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files or []]
        try:
            with self._lock:
                vetted = vet_uploads(paths, self.uploads_dir, self.quota,
                                     self._session_bytes.get(who, 0))
                self._session_bytes[who] = self._session_bytes.get(who, 0) + \
                    vetted.accepted_bytes
            return vetted
        finally:
            discard_temp(paths, get_upload_folder())

    def upload(self, files: list[Any] | None, request: gr.Request) -> Iterator[tuple[Any, ...]]:
        """Vet, then ingest in the background, yielding a progress bar, then one line per file."""
        who = getattr(request, "username", None) or getattr(request, "session_hash", "") or ""
        skip = (gr.skip(),) * 3
        try:
            vetted = self._vet(files, who)
        except OSError as exc:
            log.exception("saving uploads failed")
            yield None, report_html([], [f"The upload could not be saved: {self.redact(exc)}"]), \
                *skip
            return
        lines: list[str] = []
        errors = list(vetted.rejected)
        if vetted.accepted:
            try:
                for event in _ingest_events(self.live, vetted.accepted):
                    if isinstance(event, tuple):
                        yield None, progress_html(*event), *skip
                    else:
                        lines, file_errors = self._result_lines(event)
                        errors = file_errors + errors
            except Exception as exc:  # noqa: BLE001 - one line for the person, trace in the log
                log.exception("ingest failed")
                errors.insert(0, f"The documents could not be added: {self.redact(exc)}")
        if not lines and not errors:
            errors = ["No files received"]
        yield None, report_html(lines, errors), *self.refresh()

    def ask_remove(self, path: str | None) -> tuple[Any, ...]:
        if not path:
            return report_html([], ["Choose a document to remove first"]), gr.Column(
                visible=False), ""
        doc = next((d for d in self.listing() if d.path == path), None)
        if doc is None:
            return report_html([], ["That document is no longer in the list"]), \
                gr.Column(visible=False), ""
        sample = Path(path).resolve().parent == DEFAULT_CORPUS.resolve()
        text = (f"Remove “{esc(doc.title)}” "
                f"(<span class='rag-file'>{esc_name(doc.source)}</span>)? Its passages will no "
                "longer be used for answers.")
        if sample:
            text += " It is one of the sample documents that came with the app."
        return "", gr.Column(visible=True), f"<div>{text}</div>"

    def remove(self, path: str | None) -> tuple[Any, ...]:
        hidden = gr.Column(visible=False)
        if not path:
            return report_html([], ["Choose a document to remove first"]), hidden, *self.refresh()
        name = display_name(Path(path).name)
        try:
            with self.live.writing() as engine:
                removed, finished = engine.delete(path)
        except Exception as exc:  # noqa: BLE001 - one line for the person, trace in the log
            log.exception("delete failed")
            return report_html([], [f"{name} could not be removed: {self.redact(exc)}"]), \
                hidden, *self.refresh()
        for gone in removed:  # drop our own copy of an uploaded file, never anything else
            if Path(gone).resolve().parent == self.uploads_dir.resolve():
                Path(gone).unlink(missing_ok=True)
        line = (f"Removed {name}" if removed or finished
                else f"{name} was not in the list any more")
        return report_html([line]), hidden, *self.refresh()

    def wire(self, panel: DocumentsPanel, header: gr.HTML) -> None:
        """Upload, two-step remove; both in the documents group, never blocking questions."""
        listing = [panel.docs, header, panel.to_remove]
        panel.files.upload(self.upload, panel.files,
                           [panel.files, panel.report, *listing], api_visibility="private",
                           concurrency_id=DOCS_QUEUE, show_progress="hidden")
        panel.remove.click(self.ask_remove, panel.to_remove,
                           [panel.report, panel.confirm_row, panel.confirm_text],
                           api_visibility="private", queue=False, show_progress="hidden")
        panel.cancel.click(lambda: ("", gr.Column(visible=False)), None,
                           [panel.report, panel.confirm_row], api_visibility="private",
                           queue=False, show_progress="hidden")
        panel.confirm.click(self.remove, panel.to_remove,
                            [panel.report, panel.confirm_row, *listing],
                            api_visibility="private", concurrency_id=DOCS_QUEUE,
                            show_progress="hidden")
