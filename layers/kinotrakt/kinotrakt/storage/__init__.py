"""Storage ports (what the sync needs) and their DynamoDB / Secrets Manager / in-memory adapters."""
