"""The Gradio chat app (``rag serve``): a thin front end over ``rag.engine.Engine``.

``ui.render`` turns answers into escaped HTML, ``ui.uploads`` vets uploaded files,
``ui.app`` wires them into Gradio; only ``ui.app`` imports Gradio.
"""
