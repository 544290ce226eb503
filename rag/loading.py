"""Reading documents: files and folders in, clean text out, or a one-line reason.

Each supported format is turned into plain text with paragraphs on their own
lines; then page boilerplate common in news pages (ads, "read also" links,
photo credits, embedded tweets, repeated headlines) is removed so it never
becomes a passage someone gets cited to.

Every file is read with bounded work (``Limits``): the raw size, the unpacked
size and part count of a DOCX (checked before anything is inflated, and again
while streaming), the extracted text, the PDF page count, and a time budget.
``FileReader`` runs each read in a separate process with a memory cap and kills
it when the budget runs out, so a decompression bomb, a parser stuck in a
pathological PDF or a file that is not really a file costs one skipped line,
never the whole ingest. Special files (FIFOs, sockets, devices) are never opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
LOAD_SECONDS = 60.0  # per-file time budget: a 10 MB PDF of text reads in ~10 s here
LOADER_MEMORY_BYTES = 1536 * 2**20  # address space of the reading process


@dataclass(frozen=True)
class Limits:
    """How much work one file may cost; a file over any limit is skipped with one line."""

    max_bytes: int  # the file itself (RAG_MAX_FILE_MB)
    max_text_chars: int  # text extracted from it
    max_unpacked_bytes: int  # sum of the uncompressed parts of a zip-based format (DOCX)
    max_zip_parts: int = 5000
    max_pdf_pages: int = 5000
    seconds: float = LOAD_SECONDS

    @classmethod
    def for_max_bytes(cls, max_bytes: int, seconds: float = LOAD_SECONDS) -> Limits:
        """Text may be as long as a plain text file could be; a DOCX's XML may unpack to
        20x that (markup around the text; real documents measured 3-8x)."""
        return cls(max_bytes=max_bytes, max_text_chars=max_bytes,
                   max_unpacked_bytes=20 * max_bytes, seconds=seconds)

    def over(self, what: str, got: float, limit: float, unit: str = "MB") -> UnreadableDocument:
        scale = 1e6 if unit == "MB" else 1
        return UnreadableDocument(
            f"{what} {got / scale:,.0f} {unit}, over the limit of {limit / scale:,.0f} {unit}"
        )


@dataclass(frozen=True)
class LoadedDocument:
    path: Path  # resolved path, the document's identity in the store
    source: str  # file name shown in citations
    text: str
    content_hash: str  # of the raw bytes: unchanged files are skipped on re-ingest


@dataclass(frozen=True)
class LoadError:
    """A file that could not be read; ``reason`` is one line for the person."""

    path: Path
    reason: str

    def __str__(self) -> str:
        from rag.display import display_name

        return f"skipped {display_name(os.fspath(self.path))}: {self.reason}"


class UnreadableDocument(ValueError):
    pass


def special_file_kind(mode: int) -> str | None:
    """'FIFO', 'socket', 'device' for files that must never be opened, else None."""
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return None


def _name_problem(path: Path) -> str | None:
    """Why a path cannot be stored: Chroma and every front end need valid UTF-8."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8; rename the file"
    return None


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path | LoadError]:
    """Expand files and folders (recursively) into supported files, sorted, each once.

    Symlink loops, missing paths, special files, undecodable names, hidden
    entries and unreadable folders become ``LoadError``s instead of exceptions or
    silence.
    """
    seen: set[Path] = set()
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.exists():
            yield LoadError(root, "no such file or folder")
            continue
        candidates: Iterable[Path | LoadError] = sorted(
            _walk(root), key=lambda p: os.fsencode(p.path if isinstance(p, LoadError) else p)
        ) if root.is_dir() else [root]
        for path in candidates:
            item = path if isinstance(path, LoadError) else _vet(path, root, seen)
            if item is not None:
                yield item


def _vet(path: Path, root: Path, seen: set[Path]) -> Path | LoadError | None:
    """A candidate file as a resolved path, a reason to skip it, or None to pass it by."""
    try:
        resolved = path.resolve(strict=True)
        mode = resolved.stat().st_mode
    except (OSError, RuntimeError) as exc:
        return LoadError(path, f"cannot resolve path ({exc.__class__.__name__})")
    if resolved in seen:
        return None
    seen.add(resolved)
    supported = resolved.suffix.lower() in SUPPORTED_SUFFIXES
    kind = special_file_kind(mode)
    if kind and (supported or path == root):
        return LoadError(path, f"is a {kind}, not a regular file; not opened")
    if not supported:
        return LoadError(path, f"unsupported file type {path.suffix or '(none)'}") \
            if path == root else None
    problem = _name_problem(resolved)
    return LoadError(path, problem) if problem else resolved


def _walk(root: Path) -> Iterator[Path | LoadError]:
    """os.walk without following symlinked folders (no loops).

    Hidden folders are not searched and hidden documents not read, but both are
    reported, as are folders that cannot be listed: nothing is skipped silently.
    """
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=False):
        for failed in errors:
            yield LoadError(Path(failed.filename or dirpath),
                            f"cannot list folder ({failed.strerror or 'error'})")
        errors.clear()
        for name in [d for d in dirnames if d.startswith(".")]:
            yield LoadError(Path(dirpath) / name, "hidden folder, not searched "
                            "(name starts with '.'; pass it by name to ingest it)")
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath) / name
            if not name.startswith("."):
                yield path
            elif path.suffix.lower() in SUPPORTED_SUFFIXES:
                yield LoadError(path, "hidden file, not read "
                                "(name starts with '.'; pass it by name to ingest it)")
    for failed in errors:
        yield LoadError(Path(failed.filename or root),
                        f"cannot list folder ({failed.strerror or 'error'})")


def load_document(path: Path, max_bytes: int, limits: Limits | None = None) -> LoadedDocument:
    """Read one file into clean text; raise ``UnreadableDocument`` with a short reason.

    Runs in the calling process with cooperative limits; ``FileReader`` adds a
    separate process, a hard time budget and a memory cap around it.
    """
    limits = limits or Limits.for_max_bytes(max_bytes)
    deadline = time.monotonic() + limits.seconds
    problem = _name_problem(path)
    if problem:
        raise UnreadableDocument(problem)
    raw = _read_bytes(path, limits.max_bytes)
    if not raw.strip():
        raise UnreadableDocument("file is empty")
    try:
        text = _extract(path.suffix.lower(), raw, limits, deadline)
    except (UnreadableDocument, MemoryError):
        raise
    except RecursionError as exc:
        raise UnreadableDocument("nested too deeply to read (recursion limit)") from exc
    except Exception as exc:  # noqa: BLE001 - parsers raise anything on hostile input
        raise UnreadableDocument(f"could not be read ({_one_line(exc)})") from exc
    text = _CONTROL_CHARS.sub("", strip_boilerplate(text))
    if len(text) > limits.max_text_chars:
        raise limits.over("extracted text is", len(text), limits.max_text_chars, "characters")
    if not text.strip():
        raise UnreadableDocument("no text left after extraction")
    return LoadedDocument(
        path=path, source=path.name, text=text, content_hash=hashlib.sha256(raw).hexdigest()
    )


_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0][:200]}" if lines else exc.__class__.__name__


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, without ever opening a FIFO, socket or device, or reading past
    ``max_bytes`` (the size is checked again on the open handle: files change)."""
    try:
        kind = special_file_kind(os.stat(path).st_mode)
        if kind:
            raise UnreadableDocument(f"is a {kind}, not a regular file; not opened")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise UnreadableDocument("not a regular file; not read")
            if st.st_size > max_bytes:
                raise UnreadableDocument(
                    f"file is {st.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB "
                    "limit (RAG_MAX_FILE_MB)"
                )
            raw = handle.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise UnreadableDocument("file vanished before it could be read") from exc
    except PermissionError as exc:
        raise UnreadableDocument("permission denied") from exc
    except IsADirectoryError as exc:
        raise UnreadableDocument("is a folder") from exc
    except OSError as exc:
        raise UnreadableDocument(f"cannot read ({exc.strerror or exc.__class__.__name__})") from exc
    if len(raw) > max_bytes:
        raise UnreadableDocument(f"file grew over the {max_bytes / 1e6:.0f} MB limit while read")
    return raw


def _extract(suffix: str, raw: bytes, limits: Limits, deadline: float) -> str:
    if suffix == ".pdf":
        return _pdf_text(raw, limits, deadline)
    if suffix == ".docx":
        return _docx_text(raw, limits, deadline)
    decoded = decode_text(raw)
    if suffix in (".html", ".htm"):
        return html_to_text(decoded)
    if suffix in (".md", ".markdown"):
        return markdown_to_text(decoded)
    return decoded


def _check_time(deadline: float, limits: Limits) -> None:
    if time.monotonic() > deadline:
        raise UnreadableDocument(f"reading took over {limits.seconds:g} s (per-file time budget)")


def decode_text(raw: bytes) -> str:
    """Decode bytes as UTF-8 (BOM allowed), else the most plausible legacy encoding.

    Binary content (NUL bytes, many control characters) is refused rather than
    turned into garbage passages.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
        if "\x00" in text:
            raise UnreadableDocument("looks binary (NUL characters), not text")
        return text
    if b"\x00" in raw:  # anywhere: a NUL past the first 64 KB used to reach answers
        raise UnreadableDocument("looks binary (NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw, cp_isolation=["cp1250", "iso8859_2", "cp1252", "iso8859_16", "cp1251"]
                      ).best()
    if best is None:
        raise UnreadableDocument("not valid text in UTF-8 or a known legacy encoding")
    text = str(best)
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.01 * max(1, min(len(text), 65536)):
        raise UnreadableDocument("looks binary (control characters), not text")
    return text


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, paragraph per line, without scripts or page chrome."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav", "footer", "aside",
                     "form", "iframe", "svg", "button", "header"]):
        tag.decompose()
    body = soup.find("article") or soup.find("main") or soup.body or soup
    blocks = []
    for el in body.find_all(["p", "h1", "h2", "h3", "h4", "li", "blockquote", "pre", "td"]):
        if el.find(["p", "li", "blockquote"]):  # a container: its children are listed too
            continue
        line = " ".join(el.get_text(" ", strip=True).split())
        if line:
            blocks.append(line)
    if not blocks:
        blocks = [" ".join(line.split()) for line in body.get_text("\n").splitlines()]
    return "\n".join(b for b in blocks if b)


_MD_PATTERNS = [
    (re.compile(r"```.*?```", re.S), " "),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.M), ""),
    (re.compile(r"^\s{0,3}>\s?", re.M), ""),
    (re.compile(r"^\s*[-*+]\s+", re.M), ""),
    (re.compile(r"(\*\*|__|`)"), ""),
    (re.compile(r"<[^>]+>"), ""),
]


def markdown_to_text(md: str) -> str:
    for pattern, repl in _MD_PATTERNS:
        md = pattern.sub(repl, md)
    return md


def _pdf_text(raw: bytes, limits: Limits, deadline: float) -> str:
    """Text of a PDF, page by page, within the page, text and time limits.

    pypdf itself caps each decompressed stream (75 MB, ``pypdf.filters``) and
    raises ``RecursionError`` on deeply nested objects; both become one line.
    """
    import io
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise UnreadableDocument("PDF is encrypted")
        if len(reader.pages) > limits.max_pdf_pages:
            raise limits.over("PDF has", len(reader.pages), limits.max_pdf_pages, "pages")
        pages, chars = [], 0
        for page in reader.pages:
            _check_time(deadline, limits)
            pages.append(page.extract_text() or "")
            chars += len(pages[-1])
            if chars > limits.max_text_chars:
                raise limits.over("PDF text is over", chars, limits.max_text_chars, "characters")
    except (UnreadableDocument, MemoryError):
        raise
    except RecursionError as exc:
        raise UnreadableDocument("corrupt or hostile PDF: nested too deeply (recursion limit)"
                                 ) from exc
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on broken files
        raise UnreadableDocument(f"corrupt or unreadable PDF ({_one_line(exc)})") from exc
    # PDF lines are layout lines: join them into paragraphs, keep blank-line breaks.
    text = "\n".join(pages)
    text = re.sub(r"-\n(?=\w)", "", text)
    text = re.sub(r"(?<![.!?:;\"”])\n(?!\n)", " ", text)
    return text


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_OFFICE_DOCUMENT = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
                    "officeDocument")


class _BoundedStream:
    """A zip member read through a counter: headers can lie about sizes, this cannot."""

    def __init__(self, handle: Any, budget: list[int], limits: Limits, deadline: float) -> None:
        self.handle, self.budget, self.limits, self.deadline = handle, budget, limits, deadline

    def read(self, n: int = 65536) -> bytes:
        data = self.handle.read(min(n, 1 << 20) if n and n > 0 else 1 << 20)
        self.budget[0] += len(data)
        if self.budget[0] > self.limits.max_unpacked_bytes:
            raise self.limits.over("DOCX unpacks to over", self.budget[0],
                                   self.limits.max_unpacked_bytes)
        _check_time(self.deadline, self.limits)
        return data


def _docx_text(raw: bytes, limits: Limits, deadline: float) -> str:
    """Paragraph texts of a DOCX, streamed: memory stays flat whatever the file unpacks to.

    python-docx loads every part into one lxml tree first (a 3.7 MB file that
    unpacks to ~1 GB of XML drove RSS past 7 GB); this checks the zip directory's
    sizes and part count before inflating anything, then streams the main part
    through ``iterparse``, counting the bytes really inflated and the text kept.
    """
    import io
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        parts = archive.infolist()
        if len(parts) > limits.max_zip_parts:
            raise limits.over("DOCX has", len(parts), limits.max_zip_parts, "parts")
        declared = sum(p.file_size for p in parts)
        if declared > limits.max_unpacked_bytes:
            raise limits.over("DOCX unpacks to", declared, limits.max_unpacked_bytes)
        budget = [0]
        main = _docx_main_part(archive, budget, limits, deadline)
        with archive.open(main) as handle:
            return _docx_paragraphs(_BoundedStream(handle, budget, limits, deadline), limits)
    except (UnreadableDocument, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile/zlib/lxml raise many types
        raise UnreadableDocument(f"corrupt or unreadable DOCX ({_one_line(exc)})") from exc


def _docx_main_part(archive: Any, budget: list[int], limits: Limits, deadline: float) -> str:
    """The document part named by the package relationships (word/document.xml usually)."""
    from lxml import etree

    try:
        with archive.open("_rels/.rels") as handle:
            rels = etree.parse(_BoundedStream(handle, budget, limits, deadline),
                               etree.XMLParser(resolve_entities=False, no_network=True))
    except KeyError:
        return "word/document.xml"
    for rel in rels.getroot():
        if rel.get("Type") == _OFFICE_DOCUMENT and rel.get("Target"):
            return str(rel.get("Target")).lstrip("/")
    return "word/document.xml"


def _docx_paragraphs(stream: _BoundedStream, limits: Limits) -> str:
    from lxml import etree

    paragraphs, chars = [], 0
    for _, element in etree.iterparse(stream, events=("end",), tag=f"{_W}p",
                                      resolve_entities=False, no_network=True):
        parts = []
        for node in element.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr"):
            parts.append(node.text or "" if node.tag == f"{_W}t" else
                         "\t" if node.tag == f"{_W}tab" else "\n")
        text = "".join(parts)
        if text.strip():
            paragraphs.append(text)
            chars += len(text) + 1
            if chars > limits.max_text_chars:
                raise limits.over("DOCX text is over", chars, limits.max_text_chars,
                                  "characters")
        element.clear(keep_tail=False)  # paragraphs read so far leave the tree
        parent = element.getparent()
        while parent is not None and element.getprevious() is not None:
            del parent[0]
    return "\n".join(paragraphs)


# Lines that are page furniture in news articles, in the languages we meet most.
_BOILERPLATE_LINE = re.compile(
    r"""^(
        reklama | advertisement | advertisment | publicitate | anzeige | werbung
      | dodano:? | źródło:.* | sursa:.* | source:.* | foto:.* | fot\.:?.*
      | (czytaj|przeczytaj)\s+(też|także|również|więcej)\b.* | citeşte\s+şi:.* | citește\s+și:.*
      | vezi\s+şi:.* | vezi\s+și:.* | read\s+(also|more):?.* | see\s+also:.* | lesen\s+sie\s+auch.*
      | .*pic\.twitter\.com/\S+ | share | udostępnij | comments? | komentarze
    )$""",
    re.I | re.X,
)
_LINK_HEADER = re.compile(r"^(czytaj|przeczytaj)\s+(też|także|również)\s*:?$", re.I)
_TWEET_BYLINE = re.compile(
    r"^\S+\s*(January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\s+\d{1,2},\s+\d{4}$"
)
_CREDIT = re.compile(r"\sŹródło:\s.*$|\s(Foto|Fot\.|Sursa):\s.*$")


def strip_boilerplate(text: str) -> str:
    """Remove ads, 'read also' blocks, photo credits, tweet bylines and repeated lines."""
    out: list[str] = []
    seen: set[str] = set()
    skip_next = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = " ".join(line.split())
        if not stripped:
            if out and out[-1]:
                out.append("")
            continue
        if skip_next:  # the linked headline right after "Czytaj też:"
            skip_next = False
            continue
        if _LINK_HEADER.match(stripped):
            skip_next = True
            continue
        if _BOILERPLATE_LINE.match(stripped) or _TWEET_BYLINE.match(stripped):
            continue
        stripped = _CREDIT.sub("", stripped).strip()
        key = stripped.casefold()
        if key in seen:  # repeated headline or caption
            continue
        seen.add(key)
        if stripped:
            out.append(stripped)
    return "\n".join(out).strip()


class FileReader:
    """Reads files in a separate process, with a hard time budget and a memory cap.

    In-process limits bound what the parsers are asked to do; this bounds what
    they may cost when a file finds a path we did not foresee (a PDF that loops,
    a parser that allocates without end): the worker is killed at the budget and
    restarted for the next file, or dies at its memory cap, and the file is one
    skipped line. One worker serves a whole ingest (start-up ~0.3 s; a fresh
    interpreter, so nothing of the parent's threads or model is copied).
    """

    def __init__(self, limits: Limits, memory_bytes: int = LOADER_MEMORY_BYTES) -> None:
        self.limits, self.memory_bytes = limits, memory_bytes
        self._proc: Any = None
        self._conn: Any = None

    def __enter__(self) -> FileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, path: Path) -> LoadedDocument:
        """Like ``load_document``; raises ``UnreadableDocument`` with one line."""
        problem = _name_problem(path)
        if problem:
            raise UnreadableDocument(problem)
        self._start()
        self._conn.send((str(path), self.limits))
        # The worker's own cooperative check fires first; this is the hard stop.
        if not self._conn.poll(self.limits.seconds + 5):
            self.close()
            raise UnreadableDocument(
                f"reading took over {self.limits.seconds:g} s (per-file time budget); stopped")
        try:
            ok, payload = self._conn.recv()
        except (EOFError, OSError) as exc:
            self.close()
            raise UnreadableDocument(
                "the reading process died (over its "
                f"{self.memory_bytes / 2**20:.0f} MB memory cap?)") from exc
        if ok:
            return payload
        raise UnreadableDocument(payload)

    def _start(self) -> None:
        """Start the worker as a plain ``python -c`` child talking over two pipes.

        Not ``multiprocessing``: its spawn and forkserver modes re-import the
        parent's main script, which breaks scripts without a ``__main__`` guard,
        and fork would copy a process full of model threads.
        """
        if self._proc is not None and self._proc.poll() is None:
            return
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [package_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        code = "import sys; from rag.loading import _reader_main; _reader_main(*sys.argv[1:])"
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code, str(to_child_r), str(from_child_w),
             str(self.memory_bytes)],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, env=env)
        os.close(to_child_r)
        os.close(from_child_w)
        self._conn = _Duplex(Connection(from_child_r, writable=False),
                             Connection(to_child_w, readable=False))

    def close(self) -> None:
        if self._proc is None:
            return
        self._conn.close()
        self._proc.kill()
        self._proc.wait(timeout=5)
        self._proc = self._conn = None


class _Duplex:
    """Two one-way pipe connections used as one (send on one, receive on the other)."""

    def __init__(self, incoming: Any, outgoing: Any) -> None:
        self.incoming, self.outgoing = incoming, outgoing

    def send(self, obj: object) -> None:
        self.outgoing.send(obj)

    def recv(self) -> Any:
        return self.incoming.recv()

    def poll(self, timeout: float) -> bool:
        return bool(self.incoming.poll(timeout))

    def close(self) -> None:
        for conn in (self.incoming, self.outgoing):
            with contextlib.suppress(OSError):
                conn.close()


def _reader_main(read_fd: str, write_fd: str, memory_bytes: str) -> None:
    """The worker: read (path, limits) requests, answer (True, doc) or (False, reason)."""
    import resource
    from multiprocessing.connection import Connection

    cap = int(memory_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    conn = _Duplex(Connection(int(read_fd), writable=False),
                   Connection(int(write_fd), readable=False))
    while True:
        try:
            path, limits = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[bool, Any] = (True, load_document(Path(path), limits.max_bytes, limits))
        except UnreadableDocument as exc:
            reply = (False, str(exc))
        except MemoryError:
            reply = (False, f"needs more than {cap / 2**20:.0f} MB of memory to read")
        except BaseException as exc:  # noqa: BLE001 - anything else is still one line
            reply = (False, f"could not be read ({_one_line(exc)})")
        conn.send(reply)
