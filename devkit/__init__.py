"""Developer tooling: the fake services, the offline sandbox (in-process, and ``make sandbox``'s local cloud),
``make invoke``, in-memory stores, the virtual clock and the template reader. Tests, the benchmark, the chaos
suite, ``make demo`` and the CLI's ``--sandbox`` use it; nothing the Lambda functions run imports it
(``tests/unit/test_import_graph.py``)."""
