"""The offline sandbox (DESIGN §7): moto + the fake Kinopub and Trakt servers + the real handlers."""
