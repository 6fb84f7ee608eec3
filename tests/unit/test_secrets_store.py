"""The token stores: a refreshed pair survives, a concurrent writer is never clobbered, and no token value
ever shows up in a repr, a str or an error."""

from __future__ import annotations

import boto3
import pytest
from pydantic import SecretStr

from devkit.memory import InMemoryTokenStore
from kinotrakt.errors import ConcurrentTokenWrite, MalformedSecret
from kinotrakt.storage.ports import ServiceSecret, TokenStore
from kinotrakt.storage.secrets import SecretsManagerTokenStore
from tests.conftest import template_properties

ACCESS = "access-9f2c1d7e4b"
REFRESH = "refresh-5a8e3c0b6d"
CLIENT_SECRET = "client-secret-1e7f9a2c"
SECRET_VALUES = (ACCESS, REFRESH, CLIENT_SECRET)


def linked(access: str = ACCESS, refresh: str = REFRESH) -> ServiceSecret:
    return ServiceSecret(
        client_id="app-id",
        client_secret=SecretStr(CLIENT_SECRET),
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh),
        expires_at=1_793_534_400,
        issued_at=1_792_929_600,
    )


def assert_no_secret_in(text: str) -> None:
    for value in SECRET_VALUES:
        assert value not in text


@pytest.fixture(params=["memory", "secretsmanager"])
def store(request: pytest.FixtureRequest) -> TokenStore:
    if request.param == "memory":
        return InMemoryTokenStore(ServiceSecret.from_json(template_properties("TraktSecret")["SecretString"]))
    trakt_arn = request.getfixturevalue("secrets")[1]
    session = request.getfixturevalue("aws")
    return SecretsManagerTokenStore(session.client("secretsmanager"), trakt_arn)


def test_a_freshly_deployed_secret_loads_with_no_tokens(store: TokenStore) -> None:
    stored = store.load()
    assert stored.secret == ServiceSecret()
    assert stored.version is not None


def test_a_saved_pair_is_what_the_next_load_returns(store: TokenStore) -> None:
    # Given the deployed secret
    first = store.load()
    # When a refresh writes the new pair
    saved = store.save(linked(), expected_version=first.version)
    # Then the next run loads exactly that pair, under the new version
    loaded = store.load()
    assert saved.version != first.version
    assert loaded.version == saved.version
    assert loaded.secret == linked()
    assert loaded.secret.access_token is not None
    assert loaded.secret.access_token.get_secret_value() == ACCESS


def test_fields_this_version_does_not_know_are_kept(store: TokenStore) -> None:
    secret = ServiceSecret.model_validate({"client_id": "app", "setup_key": "k" * 32, "note": "linked by CLI"})
    store.save(secret, expected_version=store.load().version)
    loaded = store.load().secret
    assert loaded.model_extra == {"note": "linked by CLI"}
    assert loaded.setup_key is not None
    assert loaded.setup_key.get_secret_value() == "k" * 32


def test_a_stale_version_refuses_to_write_and_keeps_the_other_writers_pair(store: TokenStore) -> None:
    # Given a run that loaded the secret, then a re-link that wrote a new pair meanwhile
    run_read = store.load()
    relinked = store.save(linked("access-relinked", "refresh-relinked"), expected_version=run_read.version)
    # When the run tries to save its own refreshed pair with the version it read
    with pytest.raises(ConcurrentTokenWrite) as refused:
        store.save(linked(), expected_version=run_read.version)
    # Then nothing was written: the re-link's pair is still the live one, and the error names no token
    current = store.load()
    assert current.version == relinked.version
    assert current.secret == linked("access-relinked", "refresh-relinked")
    assert_no_secret_in(str(refused.value))
    assert_no_secret_in(repr(refused.value))


def test_a_writer_that_never_read_a_version_does_not_overwrite_one(store: TokenStore) -> None:
    with pytest.raises(ConcurrentTokenWrite):
        store.save(linked(), expected_version=None)
    assert store.load().secret == ServiceSecret()


def test_no_token_in_the_repr_or_str_of_what_was_loaded(store: TokenStore) -> None:
    store.save(linked(), expected_version=store.load().version)
    stored = store.load()
    for text in (repr(stored), str(stored), repr(stored.secret), str(stored.secret), repr(store), str(store)):
        assert_no_secret_in(text)


def test_an_empty_in_memory_store_has_no_version_until_the_first_write() -> None:
    store = InMemoryTokenStore()
    assert store.load().version is None
    store.save(linked(), expected_version=None)
    assert store.load().version == "1"
    assert store.writes == [linked()]


def test_memory_store_faults_fire_before_the_operation() -> None:
    seen: list[str] = []

    def throttle(operation: str) -> None:
        seen.append(operation)
        if operation == "save":
            raise TimeoutError("injected")

    store = InMemoryTokenStore(linked(), faults=throttle)
    with pytest.raises(TimeoutError):
        store.save(linked("new-access", "new-refresh"), expected_version="1")
    assert store.load().secret == linked()
    assert seen == ["save", "load"]


# --- Secrets Manager only: what someone may have put into the secret by hand ----------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (f'{{"client_id": "app", "access_token": "{ACCESS}"', "not valid JSON"),
        (f'{{"access_token": "{ACCESS}", "expires_at": "{REFRESH}"}}', "expires_at: int_parsing"),
        (f'["{CLIENT_SECRET}"]', "value: model_type"),
    ],
)
def test_a_malformed_secret_says_to_reset_it_without_quoting_it(
    aws: boto3.Session, secrets: tuple[str, str], raw: str, reason: str
) -> None:
    # Given a secret edited by hand into something that is not the contract's JSON (docs/contract.md#secrets)
    client = aws.client("secretsmanager")
    client.put_secret_value(SecretId=secrets[0], SecretString=raw)
    store = SecretsManagerTokenStore(client, secrets[0])
    # When a run loads it
    with pytest.raises(MalformedSecret) as error:
        store.load()
    # Then the error says what is wrong and what to run, and carries none of the secret's content
    message = str(error.value)
    assert reason in message
    assert "`kinotrakt setup --reset` overwrites it" in message
    # And it names the unreadable version, which `setup --reset` replaces
    assert error.value.version == store.current_version()
    assert_no_secret_in(message)
    assert error.value.__context__ is None
    assert error.value.__cause__ is None
