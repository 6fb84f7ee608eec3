"""Every knob in one place (docs/contract.md#environment-variables), validated once at cold start.

Domain code never reads ``os.environ``: handlers and the CLI build a :class:`Settings` and pass it down.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kinotrakt import __version__
from kinotrakt.http import Limits

# Kinopub has answered 403 to clients without a browser-like User-Agent (docs/kinopub.md#transport).
DEFAULT_KINOPUB_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux aarch64) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Chrome/124.0 Safari/537.36 kinotrakt/{__version__}"
)

PositiveSeconds = Annotated[float, Field(ge=0)]


class Settings(BaseSettings):
    """The runtime contract's environment variables, with their defaults (docs/contract.md#environment-variables)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    kinopub_api_url: AnyHttpUrl = AnyHttpUrl("https://api.service-kp.com")
    trakt_api_url: AnyHttpUrl = AnyHttpUrl("https://api.trakt.tv")
    trakt_auth_url: AnyHttpUrl = AnyHttpUrl("https://auth.trakt.tv")
    trakt_authorize_url: AnyHttpUrl = AnyHttpUrl("https://auth.trakt.tv/oauth/authorize")
    kinopub_secret_id: str = ""
    trakt_secret_id: str = ""
    state_table_name: str = ""
    account_id: str = Field(default="default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    trakt_post_interval_seconds: PositiveSeconds = 1.0
    sync_batch_size: int = Field(default=100, ge=1, le=1000)
    deadline_margin_seconds: PositiveSeconds = 60.0
    sync_overlap_hours: float = Field(default=72.0, ge=0)
    full_rescan_hours: float = Field(default=24.0, gt=0)
    trakt_redirect_uri: str = ""
    # The auth function announces every Trakt link on the alarm topic (template: the AlarmTopic's ARN).
    alarm_topic_arn: str = ""
    dry_run: bool = False
    # Trakt's GET budget is 500 per 5 minutes per user (a Trakt maintainer, 2026, trakt/trakt-api#909): keep a
    # margin below it. Past it Cloudflare answers 429 with Retry-After: 300.
    trakt_get_limit: int = Field(default=450, ge=1, le=1000)
    # The longest Retry-After a run sleeps through; a longer one ends the run `partial` (`rate_limited`).
    max_retry_wait_seconds: float = Field(default=30.0, ge=0, le=600)
    # http:// service URLs only for the sandbox and tests: tokens and client secrets travel in these requests.
    allow_insecure_endpoints: bool = False
    # A view finished again on Kinopub: a new play (new_play), or never sent again (ignore).
    rewatches: Literal["new_play", "ignore"] = "new_play"
    # Not in the contract, but configurable for the reasons given in their comments.
    kinopub_user_agent: str = Field(default=DEFAULT_KINOPUB_USER_AGENT, min_length=1)
    http_timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    # requests' timeout is per socket read; this bounds a whole answer (a server sending a byte a second).
    http_total_timeout_seconds: float = Field(default=60.0, gt=0, le=600)

    @field_validator("trakt_post_interval_seconds")
    @classmethod
    def _at_least_trakt_write_limit(cls, value: float) -> float:
        # Trakt allows 1 write per second per user; spacing them closer gets 429s and risks the account.
        if value < 1.0:
            raise ValueError("must be at least 1.0: Trakt allows one write per second")
        return value

    @model_validator(mode="after")
    def _https_only(self) -> Settings:
        if self.allow_insecure_endpoints:
            return self
        insecure = [
            name.upper()
            for name in ("kinopub_api_url", "trakt_api_url", "trakt_auth_url", "trakt_authorize_url")
            if getattr(self, name).scheme != "https"
        ]
        if insecure:
            raise ValueError(
                f"{', '.join(insecure)} must be https:// URLs: tokens and client secrets travel in these requests "
                "(set ALLOW_INSECURE_ENDPOINTS=true only for a local sandbox or tests)"
            )
        return self

    @cached_property
    def http_limits(self) -> Limits:
        return Limits(
            read_timeout=self.http_timeout_seconds,
            total_seconds=self.http_total_timeout_seconds,
            max_retry_wait=self.max_retry_wait_seconds,
        )

    @cached_property
    def kinopub_base(self) -> str:
        return str(self.kinopub_api_url).rstrip("/")

    @cached_property
    def trakt_api_base(self) -> str:
        return str(self.trakt_api_url).rstrip("/")

    @cached_property
    def trakt_auth_base(self) -> str:
        return str(self.trakt_auth_url).rstrip("/")

    def require_deployment(self) -> None:
        """Fail fast, with the variable's name, when a handler runs without its AWS resources."""
        missing = [
            name
            for name, value in (
                ("KINOPUB_SECRET_ID", self.kinopub_secret_id),
                ("TRAKT_SECRET_ID", self.trakt_secret_id),
                ("STATE_TABLE_NAME", self.state_table_name),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"missing required environment variables: {', '.join(missing)}")
