"""Reading documents: files and folders in, clean text out, or a one-line reason.

Each supported format is turned into plain text with paragraphs on their own
lines; then page boilerplate common in news pages (ads, "read also" links,
photo credits, embedded tweets, repeated headlines) is removed so it never
becomes a passage someone gets cited to.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")


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
        return f"skipped {self.path}: {self.reason}"


class UnreadableDocument(ValueError):
    pass


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path | LoadError]:
    """Expand files and folders (recursively) into supported files, sorted, each once.

    Symlink loops and missing paths become ``LoadError``s instead of exceptions.
    """
    seen: set[Path] = set()
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.exists():
            yield LoadError(root, "no such file or folder")
            continue
        if root.is_file():
            candidates: Iterable[Path] = [root]
        else:
            candidates = sorted(_walk(root))
        for path in candidates:
            if isinstance(path, LoadError):
                yield path
                continue
            try:
                resolved = path.resolve(strict=True)
            except (OSError, RuntimeError) as exc:
                yield LoadError(path, f"cannot resolve path ({exc.__class__.__name__})")
                continue
            if resolved in seen:
                continue
            seen.add(resolved)
            if resolved.suffix.lower() not in SUPPORTED_SUFFIXES:
                if root.is_file():
                    yield LoadError(path, f"unsupported file type {path.suffix or '(none)'}")
                continue
            yield resolved


def _walk(root: Path) -> Iterator[Path]:
    """os.walk without following symlinked folders (no loops); hidden entries skipped."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                yield Path(dirpath) / name


def load_document(path: Path, max_bytes: int) -> LoadedDocument:
    """Read one file into clean text; raise ``UnreadableDocument`` with a short reason."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnreadableDocument(
                f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit "
                "(RAG_MAX_FILE_MB)"
            )
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise UnreadableDocument("file vanished before it could be read") from exc
    except PermissionError as exc:
        raise UnreadableDocument("permission denied") from exc
    except IsADirectoryError as exc:
        raise UnreadableDocument("is a folder") from exc
    except OSError as exc:
        raise UnreadableDocument(f"cannot read ({exc.strerror or exc.__class__.__name__})") from exc
    if not raw.strip():
        raise UnreadableDocument("file is empty")
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text = _pdf_text(raw)
    elif suffix == ".docx":
        text = _docx_text(raw)
    else:
        decoded = decode_text(raw)
        if suffix in (".html", ".htm"):
            text = html_to_text(decoded)
        elif suffix in (".md", ".markdown"):
            text = markdown_to_text(decoded)
        else:
            text = decoded
    text = strip_boilerplate(text)
    if not text.strip():
        raise UnreadableDocument("no text left after extraction")
    return LoadedDocument(
        path=path, source=path.name, text=text, content_hash=hashlib.sha256(raw).hexdigest()
    )


def decode_text(raw: bytes) -> str:
    """Decode bytes as UTF-8 (BOM allowed), else the most plausible legacy encoding.

    Binary content (NUL bytes, many control characters) is refused rather than
    turned into garbage passages.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    head = raw[:65536]
    if b"\x00" in head:
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


def _pdf_text(raw: bytes) -> str:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise UnreadableDocument("PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnreadableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(f"corrupt or unreadable PDF ({exc.__class__.__name__})") from exc
    # PDF lines are layout lines: join them into paragraphs, keep blank-line breaks.
    text = "\n".join(pages)
    text = re.sub(r"-\n(?=\w)", "", text)
    text = re.sub(r"(?<![.!?:;\"”])\n(?!\n)", " ", text)
    return text


def _docx_text(raw: bytes) -> str:
    import io
    import zipfile

    try:
        import docx

        document = docx.Document(io.BytesIO(raw))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableDocument("corrupt or unreadable DOCX") from exc
    return "\n".join(p.text for p in document.paragraphs if p.text.strip())


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
