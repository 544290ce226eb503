"""``rag check``: is the store whole? And ``--repair``: make it whole again.

Chroma keeps a record's text and metadata in SQLite and its vector in an HNSW
segment folder beside it. The hostile tests showed that losing or truncating
that folder (or its ``index_metadata.pickle``) goes unnoticed: ``count()`` and
``get()`` still answer from SQLite while queries return the wrong sentences or
nothing. So the check compares, one line per problem:

- the manifest (sentences each file should have) with the records stored,
  per file and version (orphaned records, files marked done without theirs);
- the records with the vector index (every vector read back), and a seeded
  sample of vectors with what a query for each finds;
- the journal (an ingest or delete a killed process left unfinished).

The repair finishes the journal, rebuilds the vector index from the stored
records (vectors that still read back are kept, the rest embedded again from
the stored text), and removes files whose records do not match their manifest,
saying which to ingest again. What it cannot do (a lost or 0-byte
``chroma.sqlite3``: the records themselves are gone) it says, with the way out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rag.embedding import Embedder
from rag.store import FileManifest, Store, StoreError

SAMPLE = 64  # vectors looked up by their own query; ~3 ms each


@dataclass(frozen=True)
class FileProblem:
    """A file whose records disagree with its manifest; ``kind`` says how to repair it."""

    path: str
    kind: str  # "count" | "stale" | "orphan"
    line: str


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    files: int = 0
    records: int = 0
    vectors: int = 0  # records whose vector the index gives back
    file_problems: list[FileProblem] = field(default_factory=list)
    index_damaged: bool = False

    def summary(self) -> str:
        state = "healthy" if not self.problems else f"{len(self.problems)} problem(s)"
        return (f"{state}: {self.files} files in the manifest, {self.records} records, "
                f"{self.vectors} vectors readable")


def check_store(store: Store, sample: int = SAMPLE, seed: int = 0) -> CheckReport:
    """Compare manifest, records, vector index and journal; one line per problem."""
    report = CheckReport()
    if not store.open_readonly():
        return report
    report.problems += [f"{line}: run 'rag ingest' (or 'rag check --repair') to finish it"
                        for line in store.pending()]
    manifests = {m.path: m for m in store.files()}
    report.files = len(manifests)
    per_version: Counter[tuple[str, str]] = Counter()
    unreadable, error = 0, ""
    for page in store.iter_records(with_vectors=False):
        per_version.update((r.meta.path, r.meta.content_hash) for r in page)
        report.records += len(page)
        try:
            store.vectors_of([r.id for r in page])
            report.vectors += len(page)
        except StoreError as exc:
            unreadable += len(page)
            error = str(exc)
    report.file_problems = _file_problems(manifests, per_version)
    report.problems += [p.line for p in report.file_problems]
    index = []
    if unreadable:
        index = [f"vector index: the vectors of {unreadable} of {report.records} records "
                 f"cannot be read ({error.split(': ', 1)[-1]}): run 'rag check --repair'"]
    elif report.records:
        index = store.probe_index(sample, seed)
    report.index_damaged = bool(index)
    report.problems += index
    return report


def _file_problems(manifests: dict[str, FileManifest],
                   per_version: Counter[tuple[str, str]]) -> list[FileProblem]:
    """Files whose stored sentences do not match their manifest, and orphaned sentences."""
    problems = []
    for path, manifest in sorted(manifests.items()):
        have = per_version.get((path, manifest.content_hash), 0)
        if have != manifest.sentences:
            problems.append(FileProblem(path, "count", (
                f"{path}: the manifest lists {manifest.sentences} sentences, the store holds "
                f"{have}: run 'rag check --repair', then 'rag ingest' it again")))
        stale = sum(n for (p, h), n in per_version.items()
                    if p == path and h != manifest.content_hash)
        if stale:
            problems.append(FileProblem(path, "stale", (
                f"{path}: {stale} sentences of an older version are still stored: "
                "run 'rag check --repair'")))
    for path in sorted({p for p, _ in per_version} - set(manifests)):
        count = sum(n for (p, _), n in per_version.items() if p == path)
        problems.append(FileProblem(path, "orphan", (
            f"{path}: {count} sentences belong to no listed file (orphaned): "
            "run 'rag check --repair'")))
    return problems


def repair_store(store: Store, embedder: Embedder) -> CheckReport:
    """Finish the journal, rebuild a damaged index, fix inconsistent files; check again.

    ``store`` must be open for the embedder that built it (it re-creates the
    vectors the index lost, each distinct text once). Run under the ingest lock.
    """
    from rag.ingest import embed_records

    repaired = list(store.recover())
    before = check_store(store)
    if before.index_damaged:
        copied, embedded = store.rebuild_index(lambda page: embed_records(page, embedder, {}))
        repaired.append(f"rebuilt the vector index from {copied} stored records "
                        f"({embedded} embedded again from their text)")
    for problem in before.file_problems:
        if problem.kind == "stale":
            store.drop_stale_versions(problem.path)
            repaired.append(f"{problem.path}: removed the sentences of older versions")
        else:
            store.delete_file(problem.path)
            repaired.append(f"{problem.path}: removed ({problem.kind}); run 'rag ingest "
                            f"{problem.path}' to add it again if it still exists")
    report = check_store(store)
    report.repaired = repaired
    return report
