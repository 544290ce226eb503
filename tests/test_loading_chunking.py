"""Loading and chunking: formats, encodings, boilerplate, sentence splitting."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from rag.chunking import chunk_sentences, detect_language, merge_short_sentences, split_sentences
from rag.config import DEFAULT_CORPUS
from rag.loading import (
    FileReader,
    Limits,
    LoadError,
    UnreadableDocument,
    iter_files,
    load_document,
)

MB = 10**6


def test_sample_corpus_boilerplate_is_removed() -> None:
    text = load_document(DEFAULT_CORPUS / "004_4d16be0be1a37a77.txt", 100 * MB).text
    assert "Czytaj też" not in text and "Czytaj także" not in text
    assert "Były szef NATO zdradza" not in text  # the linked headline after "Czytaj też:"
    assert "Źródło" not in text and "Dodano" not in text
    assert text.count("Groźba rosyjskiej inwazji na Ukrainę. NATO zwołuje") == 1
    text = load_document(DEFAULT_CORPUS / "001_219cb2c3f81c9bdc.txt", 100 * MB).text
    assert "REKLAMA" not in text and "pic.twitter.com" not in text
    assert "NATOJanuary 7, 2022" not in text
    text = load_document(DEFAULT_CORPUS / "003_f0b8fe8fdb47aa20.txt", 100 * MB).text
    assert "Citeşte şi" not in text
    assert "arhitectura de securitate din anul 1997" in text


def test_polish_abbreviations_and_initials_do_not_split() -> None:
    text = (
        "W czwartek prezydent G. Nausėda rozmawiał z J. Stoltenbergiem. Rosja zmobilizowała "
        "ponad 100 tys. żołnierzy. Lista żądań obejmuje m.in. Ukrainę, Gruzję itd. Koniec."
    )
    assert split_sentences(text) == [
        "W czwartek prezydent G. Nausėda rozmawiał z J. Stoltenbergiem.",
        "Rosja zmobilizowała ponad 100 tys. żołnierzy.",
        "Lista żądań obejmuje m.in. Ukrainę, Gruzję itd. Koniec.",
    ]


def test_sentences_end_at_quotes_and_line_breaks() -> None:
    text = "„Rusia este pregătită”, a spus el. Apoi a plecat!\nTitlu fără punct\nDa?"
    assert split_sentences(text) == [
        "„Rusia este pregătită”, a spus el.", "Apoi a plecat!", "Titlu fără punct", "Da?"
    ]


def test_short_fragments_join_the_next_sentence() -> None:
    merged = merge_short_sentences(["Narady w Brukseli", "Reuters podaje, że posiedzenie rady "
                                    "odbędzie się 12 stycznia w Brukseli.", "Z Brukseli X Y"])
    assert merged == [
        "Narady w Brukseli Reuters podaje, że posiedzenie rady odbędzie się 12 stycznia w "
        "Brukseli. Z Brukseli X Y"
    ]


def test_chunks_respect_the_token_budget_and_keep_whole_sentences() -> None:
    sentences = [f"Sentence number {i} has exactly eight words." for i in range(20)]
    chunks = chunk_sentences(sentences, lambda s: len(s.split()), max_tokens=20)
    assert all(c.tokens <= 20 for c in chunks)
    assert [s for c in chunks for s in c.sentences] == sentences
    assert [c.position for c in chunks] == list(range(len(chunks)))
    long = " ".join(["word"] * 500)
    cut = chunk_sentences([long], lambda s: len(s.split()), max_tokens=100)
    assert len(cut) >= 5 and all(c.tokens <= 200 for c in cut)


def test_language_detection() -> None:
    assert detect_language("În ianuarie, Rusia a cerut formal revenirea la arhitectura.") == "ro"
    assert detect_language("Sekretarz generalny NATO powiedział w poniedziałek, że") == "pl"
    assert detect_language("ok") == "und"


def test_formats(tmp_path: Path) -> None:
    html = tmp_path / "page.html"
    html.write_text(
        "<html><head><script>alert('x')</script><style>p{}</style></head><body><nav>Menu</nav>"
        "<article><h1>Title here</h1><p>First paragraph of text.</p><p>Second one.</p></article>"
        "<footer>Copyright</footer></body></html>", encoding="utf-8")
    text = load_document(html, MB).text
    assert "alert" not in text and "Menu" not in text and "Copyright" not in text
    assert text.splitlines() == ["Title here", "First paragraph of text.", "Second one."]

    md = tmp_path / "notes.md"
    md.write_text("# Heading\n\nSome **bold** text with a [link](http://x.y).\n", encoding="utf-8")
    assert load_document(md, MB).text == "Heading\n\nSome bold text with a link."

    import docx

    document = docx.Document()
    document.add_paragraph("Paragraf pierwszy.")
    document.add_paragraph("Paragraf drugi.")
    document.save(tmp_path / "doc.docx")
    assert load_document(tmp_path / "doc.docx", MB).text == "Paragraf pierwszy.\nParagraf drugi."


def test_pdf(tmp_path: Path) -> None:
    from tests.pdf_util import write_pdf

    path = tmp_path / "report.pdf"
    write_pdf(path, ["NATO and Russia met in Brussels on 12 January."])
    assert "met in Brussels on 12 January" in load_document(path, MB).text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10, "binary"),
    ],
)
def test_bad_files_get_one_line_reasons(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(UnreadableDocument, match=reason) as info:
        load_document(path, MB)
    assert "\n" not in str(info.value)


def test_legacy_encodings_and_bom(tmp_path: Path) -> None:
    polish = "Zażółć gęślą jaźń. Sekretarz generalny NATO powiedział, że Rosja żąda gwarancji."
    for name, data in {
        "cp1250.txt": polish.encode("cp1250"),
        "latin2.txt": polish.encode("iso-8859-2"),
        "bom.txt": b"\xef\xbb\xbf" + polish.encode("utf-8"),
        "utf16.txt": polish.encode("utf-16"),
    }.items():
        (tmp_path / name).write_bytes(data)
        assert load_document(tmp_path / name, MB).text == polish, name


def test_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("a sentence. " * 200_000)
    with pytest.raises(UnreadableDocument, match="over the"):
        load_document(path, MB)


def test_iter_files_expands_folders_and_reports_missing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.txt").write_text("x")
    (tmp_path / "a" / "image.png").write_bytes(b"x")
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    items = list(iter_files([tmp_path / "a", tmp_path / "missing"]))
    files = [i for i in items if isinstance(i, Path)]
    errors = [i for i in items if isinstance(i, LoadError)]
    assert [f.name for f in files] == ["one.txt"]
    assert len(errors) == 1 and "no such file" in errors[0].reason


def _pdf_with(path: Path, page_extra: str = "", contents_length: int | None = None) -> None:
    """A one-page PDF whose page dictionary or content length a hostile tester chose."""
    from tests.pdf_util import write_pdf

    write_pdf(path, ["hello"], page_extra, contents_length)


def _docx_with(path: Path, xml_chunks: Iterable[bytes]) -> None:
    """A DOCX whose document.xml is streamed from ``xml_chunks`` (bombs compress well)."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("word/document.xml", "w") as part:
        for chunk in xml_chunks:
            part.write(chunk)


W_OPEN = (b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
          b"<w:body>")
W_CLOSE = b"</w:body></w:document>"


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("nested.pdf", lambda p: _pdf_with(p, "/Annots " + "[" * 100_000 + "]" * 100_000),
         "PDF"),
        ("length.pdf", lambda p: _pdf_with(p, contents_length=99_999_999), "PDF"),
        ("malformed.docx", lambda p: _docx_with(p, [W_OPEN, b"<w:p><w:r><w:t>Hello"]),
         "corrupt or unreadable DOCX"),
        ("one_huge_node.docx", lambda p: _docx_with(
            p, [W_OPEN, b"<w:p><w:r><w:t>", *[b"abc " * 250_000] * 12, b"</w:t></w:r></w:p>",
                W_CLOSE]), "DOCX"),
        ("many_paragraphs.docx", lambda p: _docx_with(
            p, [W_OPEN, *[b"<w:p><w:r><w:t>Ala ma kota.</w:t></w:r></w:p>" * 20_000] * 20,
                W_CLOSE]), "over the limit"),
    ],
)
def test_hostile_documents_are_one_line_refusals(tmp_path: Path, name: str, make, reason: str
                                                 ) -> None:
    """Each of these raised a traceback or blew memory up on the old loader."""
    path = tmp_path / name
    make(path)
    with pytest.raises(UnreadableDocument, match=reason) as info:
        load_document(path, MB)
    assert "\n" not in str(info.value)


def test_docx_bomb_is_refused_from_its_zip_directory_before_inflating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    _docx_with(path, [W_OPEN, *[b"<w:p><w:r><w:t>x</w:t></w:r></w:p>" * 100_000] * 10, W_CLOSE])
    limits = Limits.for_max_bytes(MB)  # a 1 MB file may unpack to 20 MB; this one is 34 MB
    with pytest.raises(UnreadableDocument, match=r"DOCX unpacks to 34 MB, over the limit of 20"):
        load_document(path, MB, limits)


def test_time_budget_and_special_files(tmp_path: Path) -> None:
    from tests.pdf_util import write_pdf

    pdf = tmp_path / "slow.pdf"
    write_pdf(pdf, ["NATO and Russia met in Brussels."])
    with pytest.raises(UnreadableDocument, match="time budget"):
        load_document(pdf, MB, Limits.for_max_bytes(MB, seconds=0))
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableDocument, match="FIFO"):  # would block forever if opened
        load_document(fifo, MB)


def test_nul_byte_anywhere_is_binary(tmp_path: Path) -> None:
    path = tmp_path / "late_nul.txt"
    path.write_bytes(b"Zwykly tekst o NATO. " * 5000 + b"\x00 ukryte")
    with pytest.raises(UnreadableDocument, match="NUL"):
        load_document(path, MB)


def test_file_reader_kills_a_read_over_budget_and_goes_on(tmp_path: Path) -> None:
    """The hard stop: the worker is killed when it has not answered in time (here a
    budget the worker cannot meet: -5 s + 5 s of grace), and the next file still reads."""
    good = tmp_path / "good.txt"
    good.write_text("Rada NATO-Rosja spotkała się w Brukseli.", encoding="utf-8")
    with FileReader(Limits(MB, MB, 20 * MB, seconds=-5.0)) as reader, \
            pytest.raises(UnreadableDocument, match="time budget"):
        reader.load(good)
    with FileReader(Limits.for_max_bytes(MB)) as reader:
        assert "Brukseli" in reader.load(good).text


def test_iter_files_reports_hidden_special_and_undecodable_names(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / ".hidden_folder").mkdir(parents=True)
    (root / ".hidden_folder" / "inside.txt").write_text("x")
    (root / ".notes.txt").write_text("x")
    (root / ".DS_Store").write_bytes(b"\x00")  # not a document: passed by silently
    (root / "good.txt").write_text("x")
    os.mkfifo(root / "pipe.txt")
    with open(os.path.join(os.fsencode(root), b"bad\xff\xfename.txt"), "wb") as handle:
        handle.write(b"text")
    items = list(iter_files([root]))
    files = [i.name for i in items if isinstance(i, Path)]
    errors = {Path(os.fsencode(e.path).decode("utf-8", "replace")).name: e.reason
              for e in items if isinstance(e, LoadError)}
    assert files == ["good.txt"]
    assert "hidden folder" in errors[".hidden_folder"]
    assert "hidden file" in errors[".notes.txt"]
    assert "FIFO" in errors["pipe.txt"]
    assert "not valid UTF-8" in errors["bad\ufffd\ufffdname.txt"]
    assert len(errors) == 4
    assert all("\\x" in str(e) or "\udcff" not in str(e) for e in items if isinstance(e, LoadError))
    str(next(e for e in items if isinstance(e, LoadError) and "UTF-8" in e.reason)).encode()
