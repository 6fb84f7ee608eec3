"""The sync rules and the pipeline: collect → map → dedupe → push (``pipeline.py`` tells the steps in order)."""
