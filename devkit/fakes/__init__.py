"""Loopback fakes of Kinopub and Trakt for tests, the ``make demo`` sandbox, the chaos suite and the benchmark."""

from devkit.fakes.base import FakeServer, Fault, RecordedRequest
from devkit.fakes.fake_kinopub import FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt

__all__ = ["FakeKinopub", "FakeServer", "FakeTrakt", "Fault", "RecordedRequest"]
