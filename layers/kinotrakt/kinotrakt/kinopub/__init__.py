"""Everything that talks to Kinopub: the read-only client, device-flow linking, and its response models."""
