"""The chaos suite (issue 7): the real sync handler under randomised, seeded fault schedules.

``python -m chaos --schedules N [--seed S]`` (``make chaos``) runs N schedules and prints per-fault counts
and one summary line; ``tests/chaos`` runs a smaller, fixed set inside ``make test``.
"""
