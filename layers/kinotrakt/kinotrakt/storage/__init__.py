"""Storage ports (``ports.py``: one per kind of data) and their AWS adapters: DynamoDB (``dynamo/``) and Secrets
Manager (``secrets.py``), wired from the settings in ``aws.py``. The in-memory twins live in ``devkit/memory.py``."""
