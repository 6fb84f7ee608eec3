"""The sync rules and the pipeline: collect → map → dedupe → push (DESIGN §3)."""
