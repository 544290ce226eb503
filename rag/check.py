"""``rag check``: is the store whole? And ``--repair``: make it whole again.

Chroma keeps a record's text and metadata in SQLite and its vector in an HNSW
segment folder beside it. The hostile tests showed that losing or truncating
that folder (or its ``index_metadata.pickle``) goes unnoticed: ``count()`` and
``get()`` still answer from SQLite while queries return the wrong sentences or
nothing; that flipped bytes make every read of the collection crash the process;
and that 16 flipped bytes of one vector pass unseen. So the check compares, one
line per problem:

- the manifest (sentences each file should have) with the records stored,
  per file and version (orphaned records, files marked done without theirs);
- the records with the vector index (every vector read back, finite and of norm
  1), and a seeded sample of vectors with what a query for each finds;
- the journal (an ingest or delete a killed process left unfinished).

``check_isolated`` runs the check in a child process (``rag.index_guard``), so an
index that crashes its reader is one line, not a dead ``rag check``.

The repair finishes the journal, rebuilds the vector index from the stored
records (vectors that still read back whole are kept, the rest embedded again from
the stored text), and removes files whose records do not match their manifest,
saying which to ingest again. An index that crashes its reader is first moved
aside unopened (kept until the rebuilt one checks sound). What it cannot do (a
lost or 0-byte ``chroma.sqlite3``: the records themselves are gone) it says, with
the way out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.config import Settings
from rag.display import display_name
from rag.embedding import Embedder
from rag.store import FileManifest, Store, StoreError, damaged_rows, require_undamaged

SAMPLE = 64  # vectors looked up by their own query; ~3 ms each
SHOWN = 5  # damaged vectors named one by one; the rest are counted


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
    index_problems: list[str] = field(default_factory=list)  # also in ``problems``
    crashed: bool = False  # reading the index killed the checking process

    @property
    def index_damaged(self) -> bool:
        return bool(self.index_problems) or self.crashed

    def summary(self) -> str:
        state = "healthy" if not self.problems else f"{len(self.problems)} problem(s)"
        return (f"{state}: {self.files} files in the manifest, {self.records} records, "
                f"{self.vectors} vectors readable")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["file_problems"] = [FileProblem(**p) for p in known.get("file_problems", [])]
        return cls(**known)


def check_isolated(settings: Settings, sample: int = SAMPLE, seed: int = 0) -> CheckReport:
    """``check_store`` in a child process: a crash reading the index is one problem line.

    A sound result also records the index as sound (``rag.index_guard``).
    """
    from rag.index_guard import IndexCrashed, record_sound, run_isolated

    if settings.chroma.host:
        return check_store(Store(settings), sample, seed)
    require_undamaged(settings)  # lost records: the way out is a backup, not a repair
    try:
        report = CheckReport.from_dict(run_isolated(settings, "check", timeout=None,
                                                    sample=sample, seed=seed))
    except IndexCrashed as exc:
        return CheckReport(problems=[f"vector index: {exc}"], crashed=True)
    if not report.problems:
        record_sound(settings)
    return report


def check_store(store: Store, sample: int = SAMPLE, seed: int = 0) -> CheckReport:
    """Compare manifest, records, vector index and journal; one line per problem.

    Runs in this process: use ``check_isolated`` unless the index is known sound.
    """
    report = CheckReport()
    if not store.open_readonly():
        return report
    report.problems += [f"{line}: run 'rag ingest' (or 'rag check --repair') to finish it"
                        for line in store.pending()]
    manifests = {m.path: m for m in store.files()}
    report.files = len(manifests)
    per_version: Counter[tuple[str, str]] = Counter()
    unreadable, error, damaged = 0, "", []
    for page in store.iter_records(with_vectors=False):
        per_version.update((r.meta.path, r.meta.content_hash) for r in page)
        report.records += len(page)
        try:
            vectors = store.vectors_of([r.id for r in page])
            report.vectors += len(page)
        except StoreError as exc:
            unreadable += len(page)
            error = str(exc)
            continue
        damaged += [page[i].id for i in damaged_rows(vectors).nonzero()[0]]
    report.file_problems = _file_problems(manifests, per_version)
    report.problems += [p.line for p in report.file_problems]
    index = []
    if unreadable:
        index = [f"vector index: the vectors of {unreadable} of {report.records} records "
                 f"cannot be read ({error.split(': ', 1)[-1]}): run 'rag check --repair'"]
    elif damaged:
        named = ", ".join(damaged[:SHOWN]) + (f" and {len(damaged) - SHOWN} more"
                                              if len(damaged) > SHOWN else "")
        index = [f"vector index: {len(damaged)} of {report.records} stored vectors are damaged "
                 f"(not finite or not of norm 1: {named}): run 'rag check --repair'"]
    if report.records and not index:  # already damaged: the probe would say it again
        index += store.probe_index(sample, seed)
    report.index_problems = index
    report.problems += index
    return report


def _file_problems(manifests: dict[str, FileManifest],
                   per_version: Counter[tuple[str, str]]) -> list[FileProblem]:
    """Files whose stored sentences do not match their manifest, and orphaned sentences."""
    problems = []
    for path, manifest in sorted(manifests.items()):
        name = display_name(path)
        have = per_version.get((path, manifest.content_hash), 0)
        if have != manifest.sentences:
            problems.append(FileProblem(path, "count", (
                f"{name}: the manifest lists {manifest.sentences} sentences, the store holds "
                f"{have}: run 'rag check --repair', then 'rag ingest' it again")))
        stale = sum(n for (p, h), n in per_version.items()
                    if p == path and h != manifest.content_hash)
        if stale:
            problems.append(FileProblem(path, "stale", (
                f"{name}: {stale} sentences of an older version are still stored: "
                "run 'rag check --repair'")))
    for path in sorted({p for p, _ in per_version} - set(manifests)):
        count = sum(n for (p, _), n in per_version.items() if p == path)
        problems.append(FileProblem(path, "orphan", (
            f"{display_name(path)}: {count} sentences belong to no listed file (orphaned): "
            "run 'rag check --repair'")))
    return problems


def repair_store(settings: Settings, embedder: Embedder) -> CheckReport:
    """Finish the journal, rebuild a damaged index, fix inconsistent files; check again.

    ``embedder`` must be the one that built the store (it re-creates the vectors the
    index lost, each distinct text once). Run under the ingest lock.
    """
    from rag.index_guard import quarantine, record_sound, release_quarantine
    from rag.ingest import embed_records

    before = check_isolated(settings)
    repaired = []
    if before.crashed:
        moved = quarantine(settings)
        if moved is not None:
            repaired.append(f"moved the damaged index files aside, unopened, to {moved}")
    store = Store(settings)
    if not store.open_readonly():
        return before
    store.open_for(embedder)
    repaired += [str(line) for line in store.recover()]
    if before.crashed or repaired:
        before = check_store(store)  # safe now: the files that crashed are aside
    if before.index_damaged or before.crashed:
        copied, embedded = store.rebuild_index(lambda page: embed_records(page, embedder, {}))
        repaired.append(f"rebuilt the vector index from {copied} stored records "
                        f"({embedded} embedded again from their text)")
    for problem in before.file_problems:
        name = display_name(problem.path)
        if problem.kind == "stale":
            store.drop_stale_versions(problem.path)
            repaired.append(f"{name}: removed the sentences of older versions")
        else:
            store.delete_file(problem.path)
            repaired.append(f"{name}: removed ({problem.kind}); run 'rag ingest {name}' to "
                            "add it again if it still exists")
    record_sound(settings)  # our own writes; the check below is a fresh process's view
    report = check_isolated(settings)
    if not report.problems:
        release_quarantine(settings)
    report.repaired = repaired
    return report
