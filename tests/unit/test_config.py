"""The settings a deployment reads at cold start (docs/contract.md#environment-variables): the knobs and their
defaults, and the refusal of plain-http service URLs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kinotrakt.config import Settings

SERVICE_URLS = ("KINOPUB_API_URL", "TRAKT_API_URL", "TRAKT_AUTH_URL", "TRAKT_AUTHORIZE_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SERVICE_URLS, "ALLOW_INSECURE_ENDPOINTS", "TRAKT_GET_LIMIT", "MAX_RETRY_WAIT_SECONDS"):
        monkeypatch.delenv(name, raising=False)


def test_the_round_2_defaults() -> None:
    settings = Settings()

    # Trakt's GET budget is 500 per 5 minutes (2026): 450 leaves a margin
    assert settings.trakt_get_limit == 450
    assert settings.max_retry_wait_seconds == 30
    assert settings.http_limits.max_retry_wait == 30
    assert settings.allow_insecure_endpoints is False


@pytest.mark.parametrize("variable", SERVICE_URLS)
def test_an_http_service_url_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    # Given one service URL pointed at plain http (a token would travel in clear text)
    monkeypatch.setenv(variable, "http://api.example.test")

    # When the settings are read, Then the cold start fails and names the variable and the way out
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert variable in str(caught.value)
    assert "ALLOW_INSECURE_ENDPOINTS=true" in str(caught.value)


def test_http_service_urls_are_accepted_when_explicitly_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the sandbox's loopback fakes and the explicit switch
    for variable in SERVICE_URLS:
        monkeypatch.setenv(variable, "http://127.0.0.1:8080")
    monkeypatch.setenv("ALLOW_INSECURE_ENDPOINTS", "true")

    # When the settings are read, Then they are accepted as given
    assert Settings().kinopub_base == "http://127.0.0.1:8080"


def test_the_round_2_knobs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAKT_GET_LIMIT", "300")
    monkeypatch.setenv("MAX_RETRY_WAIT_SECONDS", "10")

    settings = Settings()

    assert settings.trakt_get_limit == 300
    assert settings.http_limits.max_retry_wait == 10


@pytest.mark.parametrize(("variable", "value"), [("TRAKT_GET_LIMIT", "0"), ("MAX_RETRY_WAIT_SECONDS", "-1")])
def test_nonsense_values_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError, match=variable.lower()):
        Settings()
