"""The labeled claim set of issue 24: claims an LLM answerer might write behind a real quote."""
