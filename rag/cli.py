"""The ``rag`` command: ingest, ask, translate, chat, status, check, delete, serve, mcp, eval,
bench.

Imports are lazy so each subcommand loads only what it needs (a cold
``rag ask`` should not import Gradio, for instance). Expected failures print
one line on stderr and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3


def _engine() -> Any:
    from rag.engine import Engine

    return Engine()


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.ingest import tqdm_progress

    engine = _engine()
    progress = tqdm_progress(force=engine.settings.progress)
    report = engine.ingest(args.paths or None, prune=args.prune, progress=progress,
                           reembed=args.reembed)
    for line in report.repaired:
        print(str(line), file=sys.stderr)
    for error in report.errors:
        print(str(error), file=sys.stderr)
    print(report.summary())
    return EXIT_PARTIAL if report.errors else EXIT_OK


def _print_answer(answer: Any, streamed: str = "") -> None:
    """Print the answer (unless it was streamed as is), its answerer and its sources."""
    if streamed.strip() != answer.answer.strip():
        if streamed:
            print()
        print(answer.answer)
    else:
        print()
    note = f"[answerer: {answer.answerer}"
    if answer.fallback_reason:
        note += f"; fallback because {answer.fallback_reason}"
    print(note + "]")
    if getattr(answer, "removal_note", None):
        print(f"[removed: {answer.removal_note}]")
    for warning in getattr(answer, "warnings", []):
        print(f"[warning: {warning}]")
    quoted = any(s.get("quote") for s in getattr(answer, "sentences", []))
    if answer.citations:
        from rag.display import display_name

        print("\nSources:")
        for c in answer.citations:
            print(f"  [{c.n}] {display_name(c.source)} (score {c.score:.3f})")
            # An LLM's answer: the verified quote it rests on, in the original language.
            print(f"      “{c.text if quoted else c.passage_text}”")


def cmd_ask(args: argparse.Namespace) -> int:
    engine = _engine()
    if args.json:  # the glosses already cached (rag translate), none written now
        answer = engine.ask(args.question, top_k=args.top_k, answerer=args.answerer)
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
        return EXIT_OK
    answer = _stream_answer(engine.ask_stream(args.question, top_k=args.top_k,
                                              answerer=args.answerer))
    _print_glosses(engine, answer)
    return EXIT_OK


def _print_glosses(engine: Any, answer: Any) -> None:
    """The answer's checked machine translations of its quotes: cached ones, then each new
    one as the local model writes it (the answer is already on screen)."""
    if answer is None:
        return
    shown = False
    for gloss in [*answer.glosses, *engine.glosses(answer)]:
        if not shown:
            from rag.glosses import LANGUAGES

            language = LANGUAGES.get(gloss["language"], gloss["language"])
            print(f"\nMachine translation into {language} (checked against the quote; "
                  "may still be inexact):")
            shown = True
        print(f"  [{gloss['n']}] {gloss['text']}", flush=True)


def cmd_translate(args: argparse.Namespace) -> int:
    """Fill the gloss cache: every stored sentence not in the language, translated and checked."""
    from rag.glosses import LANGUAGES, fill
    from rag.ingest import tqdm_progress

    if args.to not in LANGUAGES:
        print(f"error: --to must be one of {', '.join(sorted(LANGUAGES))}", file=sys.stderr)
        return EXIT_ERROR
    engine = _engine()
    glosser = engine.glosser
    if glosser is None:
        print("error: glosses need the local model (make install-llm) and RAG_GLOSSES=auto",
              file=sys.stderr)
        return EXIT_ERROR
    progress = tqdm_progress(force=engine.settings.progress, unit="sentence", desc="translate")
    report = fill(glosser, args.to, progress)
    print(report.summary(args.to))
    return EXIT_PARTIAL if report.errors else EXIT_OK


def _stream_answer(events: Any) -> Any:
    """Show text as the answerer produces it, then the final answer's sources."""
    from rag.types import Answer

    streamed = []
    for event in events:
        if isinstance(event, Answer):
            _print_answer(event, "".join(streamed))
            return event
        streamed.append(event)
        print(event, end="", flush=True)
    return None


def cmd_chat(args: argparse.Namespace) -> int:
    from rag.engine import QuestionError

    engine = _engine()
    history: list[tuple[str, str]] = []
    print("Ask about the documents (empty line or Ctrl-D to quit).")
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            print()
            return EXIT_OK
        if not question:
            return EXIT_OK
        try:
            answer = _stream_answer(engine.ask_stream(question, top_k=args.top_k,
                                                      history=history))
        except QuestionError as exc:
            print(f"error: {exc}")
            continue
        _print_glosses(engine, answer)
        if answer.standalone_question:
            print(f"(searched for: {answer.standalone_question})")
        history.append((question, answer.answer))


def cmd_status(args: argparse.Namespace) -> int:
    """What is in the store; exit 3 when it has problems (each one warning line)."""
    from rag.display import display_name

    status = _engine().status()
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
        return EXIT_PARTIAL if status.get("problems") else EXIT_OK
    print(f"store:    {status['store']}")
    print(f"embedder: {status['embedder'] or '(nothing ingested yet)'}")
    print(f"files:    {len(status['files'])}, chunks: {status['chunks']}, "
          f"sentences: {status['sentences']}")
    for f in status["files"]:
        print(f"  {display_name(f['source']):<40} {f['chunks']:>5} chunks  {f['language']}")
    for problem in status.get("problems", []):
        print(f"warning: {problem}", file=sys.stderr)
    return EXIT_PARTIAL if status.get("problems") else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Verify the store (and repair it with --repair); exit 3 while problems remain.

    The check runs in a child process, so an index that crashes its reader is one line.
    """
    from rag.check import check_isolated, repair_store
    from rag.config import Settings
    from rag.ingest import ingest_lock
    from rag.store import StoreError

    settings = Settings()
    try:
        if args.repair:
            with ingest_lock(settings):
                report = repair_store(settings, _engine().embedder)
        else:
            report = check_isolated(settings, sample=args.sample)
    except StoreError as exc:
        print(f"problem: {exc}", file=sys.stderr)
        return EXIT_PARTIAL
    for line in report.repaired:
        print(f"repaired: {line}")
    for line in report.problems:
        print(f"problem: {line}", file=sys.stderr)
    print(report.summary() if report.files or report.records or report.problems
          else "nothing has been ingested yet: nothing to check")
    return EXIT_PARTIAL if report.problems else EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    """Remove files; a retry of a delete a killed process left half done finishes it (0)."""
    from rag.display import display_name

    engine = _engine()
    missing = 0
    for name in args.files:
        removed, finished = engine.delete(name)
        for path in finished:
            print(f"finished an interrupted delete of {display_name(path)}")
        if removed:
            print(f"removed {', '.join(display_name(p) for p in removed)}")
        elif not finished:
            print(f"not in the store: {display_name(name)}", file=sys.stderr)
            missing += 1
    return EXIT_ERROR if missing else EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from rag.ui.app import serve

    return serve(host=args.host, port=args.port) or EXIT_OK


def cmd_mcp(args: argparse.Namespace) -> int:
    from rag.mcp_server import serve_stdio

    return serve_stdio()


def cmd_backends(args: argparse.Namespace) -> int:
    from rag.config import Settings
    from rag.embedding import chosen_embedder
    from rag.registry import ANSWERERS, EMBEDDERS

    settings = Settings()
    for registry, chosen in ((ANSWERERS, settings.answerer),
                             (EMBEDDERS, chosen_embedder(settings))):
        print(f"{registry.kind}s ({registry.variable}):")
        for b in registry.backends():
            mark = "*" if chosen in (b.name, *b.aliases) else " "
            print(f" {mark} {b.name:<22} {b.description}")
            if b.options:
                print(f"   {'':<22} reads {', '.join(b.options)}")
            if b.license:
                print(f"   {'':<22} license: {b.license}")
    return EXIT_OK


def run_eval(argv: Sequence[str]) -> int:
    from rag.eval.runner import main as eval_main

    return int(eval_main(list(argv)))


def run_bench(argv: Sequence[str]) -> int:
    from rag.bench.run import main as bench_main

    return int(bench_main(list(argv)))


# Subcommands with their own argument parsers: everything after the name is theirs,
# including --help (argparse.REMAINDER would swallow only what follows a positional).
DELEGATED = {"eval": run_eval, "bench": run_bench}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Ask questions about your documents, in any language."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add files or folders to the store (default: sample corpus)")
    p.add_argument("paths", nargs="*", help="files or folders")
    p.add_argument("--prune", action="store_true", help="drop stored files that no longer exist")
    p.add_argument("--reembed", action="store_true",
                   help="rebuild a store built by another embedder with the current one "
                        "(from its stored sentences), then ingest")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer one question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--top-k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--answerer", default=None, help="an answerer name (see: rag backends)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("translate", help="fill the gloss cache: translate every stored "
                                         "sentence into a language (needs the local model)")
    p.add_argument("--to", required=True, help="the language code, e.g. en")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("chat", help="a terminal conversation with follow-up questions")
    p.add_argument("--top-k", type=int, default=None)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("status", help="what is in the store")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("check", help="verify the store: manifest, records, vector index")
    p.add_argument("--repair", action="store_true",
                   help="finish interrupted work, rebuild a damaged index, drop broken files")
    p.add_argument("--sample", type=int, default=64, help="vectors looked up by their own query")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("delete", help="remove files from the store (by name or path)")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("serve", help="the chat web app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("mcp", help="the MCP server over stdio, for agents (search, ask, "
                                   "list_documents)")
    p.set_defaults(func=cmd_mcp)

    p = sub.add_parser("backends", help="the answerers and embedders, and what each reads")
    p.set_defaults(func=cmd_backends)

    sub.add_parser("eval", help="grounding evaluation: rag eval QUESTIONS.jsonl --out DIR")
    sub.add_parser("bench", help="speed and scale benchmark (rag bench --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from rag.embedding import EmbedderError
    from rag.engine import QuestionError
    from rag.errors import one_line
    from rag.ingest import IngestLocked
    from rag.store import StoreError
    from rag.types import AnswererError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in DELEGATED:
            return DELEGATED[argv[0]](argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except (QuestionError, StoreError, EmbedderError, IngestLocked, AnswererError,
            ValueError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
