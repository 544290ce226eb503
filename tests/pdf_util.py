"""Write a minimal one-page PDF with text, so PDF loading is tested on a real file."""

from __future__ import annotations

from pathlib import Path


def write_pdf(path: Path, lines: list[str], page_extra: str = "",
              contents_length: int | None = None) -> None:
    """``page_extra`` is added to the page dictionary and ``contents_length`` replaces the
    true stream length: what a hostile tester would choose."""
    text_ops = " ".join(
        f"BT /F1 12 Tf 72 {720 - 18 * i} Td ({line}) Tj ET" for i, line in enumerate(lines)
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        f"/Resources << /Font << /F1 5 0 R >> >> {page_extra} >>",
        f"<< /Length {contents_length or len(text_ops)} >>\nstream\n{text_ops}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = "%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n"
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    path.write_bytes(out.encode("latin-1"))
