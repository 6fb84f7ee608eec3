"""The services process: the fake Kinopub, the fake Trakt (enforcing its rate limits on the shared virtual clock)
and a moto server for DynamoDB and Secrets Manager; it answers :class:`bench.services.Services` commands.
Only that process imports this module (bench/services.py starts it by the module's name).

It also reads what the lower bound needs straight from the fakes' data (``dataset``) and from the stored state
(``state``), and seeds the scenarios' new views, so the measured process never touches any of it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlencode

import boto3

from bench.bounds import Dataset, Row, View, ViewKind
from bench.clock import MICROS, SharedMicros, epoch_reader
from bench.messages import NewView, ReplayCall, StateSnapshot, Traffic
from devkit.fakes.base import FakeServer, RecordedRequest, Response
from devkit.fakes.fake_kinopub import MOVIE_LIKE_TYPES, SERIES_TYPES, FakeKinopub
from devkit.fakes.fake_trakt import FakeTrakt, TraktShow, key_minute, minute_floor, parse_iso
from devkit.fakes.library import generate_library
from devkit.sandbox import (
    ACCOUNT,
    KINOPUB_SECRET,
    REGION,
    TABLE,
    TRAKT_SECRET,
    create_secrets,
    create_state_table,
    link_secret,
    sandbox_env,
)
from kinotrakt.clock import utc_from_epoch
from kinotrakt.storage.dynamo import DynamoLedgerStore, DynamoSyncStateStore, Table
from kinotrakt.storage.secrets import SecretsManagerTokenStore
from kinotrakt.tokens import kinopub_margin, trakt_margin
from kinotrakt.trakt.client import trakt_endpoint_label


class _Latency:
    """Moves the shared clock forward by a fixed time per request, as a network round trip would."""

    def __init__(self, micros: SharedMicros[int]) -> None:
        self._micros = micros
        self.step = 0

    def spend(self) -> None:
        if self.step:
            with self._micros.get_lock():
                self._micros.value += self.step


class _Tape:
    """Every request the pipeline sent, the answer it got and how long the fake took to compute it, in order, while
    recording; then, while playing, the same answers again, in the same order, for the bare-HTTP baseline (which
    sends the same requests): the fakes' state and limits are left alone, so the baseline's answers are byte for
    byte the pipeline's. Each comes back after as long as it took the first time: a request that waits for its
    answer costs its sender CPU (the wake-up, caches gone cold meanwhile), so answers handed back at once would make
    the baseline cheaper than the same exchanges were."""

    # Headers the client library sets from the request itself (or per connection): not replayed as given.
    CONNECTION_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding"})

    def __init__(self) -> None:
        self.recording = False
        self.calls: list[tuple[str, RecordedRequest, Response, float]] = []
        self._answers: dict[str, deque[tuple[Response, float]]] | None = None

    @property
    def playing(self) -> bool:
        return self._answers is not None

    def serve(self, base_url: str, request: RecordedRequest, compute: Callable[[], Response]) -> Response:
        """The recorded answer while playing; else ``compute()``'s, recorded (with its time) while recording."""
        if self._answers is not None:
            return self._answer(base_url)
        started = time.perf_counter()
        response = compute()
        if self.recording:
            self.calls.append((base_url, request, response, time.perf_counter() - started))
        return response

    def replay_calls(self) -> list[ReplayCall]:
        return [
            ReplayCall(
                request.method,
                base_url + request.path,
                dict(request.query),
                {name: value for name, value in request.headers.items() if name not in self.CONNECTION_HEADERS},
                request.body,
                response.status,
            )
            for base_url, request, response, _ in self.calls
        ]

    def play(self, on: bool) -> None:
        self._answers = None
        if on:
            self._answers = {}
            for base_url, _, response, seconds in self.calls:
                self._answers.setdefault(base_url, deque()).append((response, seconds))

    def _answer(self, base_url: str) -> Response:
        assert self._answers is not None
        queue = self._answers.get(base_url)
        if not queue:
            return Response(599, b"the baseline sent more requests than the pipeline did")
        response, seconds = queue.popleft()
        time.sleep(seconds)  # the server's own time, not the modelled latency (that is virtual)
        return response


class _Taped(FakeServer):
    """A fake whose answers go on the tape (and come from it while it plays), each costing the modelled latency."""

    def __init__(self, latency: _Latency, tape: _Tape, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.latency = latency
        self.tape = tape

    def dispatch(self, request: RecordedRequest) -> Response:
        return self.tape.serve(self.base_url, request, lambda: self._answer(request))

    def _answer(self, request: RecordedRequest) -> Response:
        self.latency.spend()
        return super().dispatch(request)


class _Kinopub(_Taped, FakeKinopub):
    pass


class _Trakt(_Taped, FakeTrakt):
    pass


class _Aws(FakeServer):
    """moto's DynamoDB and Secrets Manager for the measured process, behind the fakes' HTTP/1.1 server.

    moto's own server (werkzeug's development server) closes the connection after every answer, so each AWS call
    would pay a new TCP connection that a Lambda talking to AWS does not (botocore keeps its connections alive).
    Served here, connections stay open, and the calls go on the tape with the fakes' for the baseline. The world's
    own look at the state goes to moto's server directly (the same backends, one process), so it is never taped.
    """

    server_name = "amazon.com"

    def __init__(self, tape: _Tape) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        super().__init__()
        self.tape = tape
        self._app = DomainDispatcherApplication(create_backend_app)

    def take_fault(self, request: RecordedRequest) -> None:
        return None  # no faults here, and nothing kept: a backfill makes a few hundred calls, a day of runs more

    def dispatch(self, request: RecordedRequest) -> Response:
        return self.tape.serve(self.base_url, request, lambda: self._answer(request))

    def _answer(self, request: RecordedRequest) -> Response:
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        with self.lock:
            headers = [(name, value) for name, value in request.headers.items() if name != "content-length"]
            environ = EnvironBuilder(
                path=request.path,
                method=request.method,
                query_string=urlencode(request.query),
                headers=headers,
                data=request.body,
            ).get_environ()
            body, status, answered = run_wsgi_app(self._app, environ, buffered=True)
            content = b"".join(body)
        kept = {name: value for name, value in answered.items() if name.lower() not in _SERVER_SET_HEADERS}
        return Response(int(status.split()[0]), content, kept, answered.get("Content-Type", "application/json"))


# What the fakes' HTTP server writes itself (devkit/fakes/base.py): not copied from moto's answer.
_SERVER_SET_HEADERS = frozenset({"content-type", "content-length", "date", "connection", "server"})


def normal_imdb(raw: int | str | None) -> str | None:
    """Kinopub's IMDb field as Trakt knows it (docs/kinopub.md#types-and-ids): ``tt`` + at least 7 digits."""
    if raw is None or raw in (0, "0", ""):
        return None
    if isinstance(raw, str):
        return raw if raw.startswith("tt") else f"tt{int(raw):07d}"
    return f"tt{raw:07d}"


class World:
    def __init__(self, micros: SharedMicros[int], start_epoch: float) -> None:
        from moto.server import ThreadedMotoServer

        self._clock = epoch_reader(micros, start_epoch)
        self.kinopub_latency = _Latency(micros)
        self.trakt_latency = _Latency(micros)
        self.tape = _Tape()
        self.kinopub = _Kinopub(self.kinopub_latency, self.tape, clock=self._clock)
        self.trakt = _Trakt(self.trakt_latency, self.tape, clock=self._clock, enforce_limits=True)
        # moto's own server, for the world's look at the state; the measured process talks to ``_Aws``.
        self.aws = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per DynamoDB call otherwise
        self.pipeline_aws = _Aws(self.tape)
        self.kinopub.start()
        self.trakt.start()
        self.aws.start()
        self.pipeline_aws.start()
        host, port = self.aws.get_host_and_port()
        self._aws_url = f"http://{host}:{port}"
        self.env = sandbox_env(self.kinopub.base_url, self.trakt.base_url, AWS_ENDPOINT_URL=self.pipeline_aws.base_url)
        self._session = boto3.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

    def _client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._aws_url)  # type: ignore[call-overload]

    def close(self) -> None:
        self.kinopub.stop()
        self.trakt.stop()
        self.pipeline_aws.stop()
        self.aws.stop()

    # --- commands ------------------------------------------------------------------------------------------

    def do_generate(self, **spec: Any) -> dict[str, Any]:
        return dataclasses.asdict(generate_library(kinopub=self.kinopub, trakt=self.trakt, **spec))

    def do_link(self) -> None:
        """What a deployment plus ``kinotrakt link`` leave behind: the table, both secrets, valid tokens."""
        create_state_table(self._client("dynamodb"))
        secrets = self._client("secretsmanager")
        create_secrets(secrets)
        now = int(self._clock())
        link_secret(SecretsManagerTokenStore(secrets, KINOPUB_SECRET), self.kinopub, now)
        link_secret(SecretsManagerTokenStore(secrets, TRAKT_SECRET), self.trakt, now)

    def do_set_latency(self, kinopub: float, trakt: float) -> None:
        self.kinopub_latency.step = math.ceil(kinopub * MICROS)
        self.trakt_latency.step = math.ceil(trakt * MICROS)

    def do_record(self) -> None:
        """Record every request from now on (and forget an earlier recording)."""
        self.tape.calls.clear()
        self.tape.recording = True

    def do_recorded(self) -> list[ReplayCall]:
        """Stop recording; the recorded requests, as the baseline sends them again."""
        self.tape.recording = False
        return self.tape.replay_calls()

    def do_playback(self, on: bool) -> None:
        """Answer every request with the next recorded answer (``on``), or as the fakes do (``off``)."""
        self.tape.play(on)

    def do_traffic(self) -> Traffic:
        counts: Counter[str] = Counter()
        throttled = errors = 0
        labels: tuple[tuple[str, FakeKinopub | FakeTrakt, Callable[[str], str]], ...] = (
            ("kinopub", self.kinopub, str),
            ("trakt", self.trakt, trakt_endpoint_label),
        )
        for service, fake, label in labels:
            for request in fake.calls():
                counts[f"{service} {request.method} {label(request.path)}"] += 1
                throttled += request.status == 429
                errors += request.status is not None and request.status >= 500
            fake.clear_requests()
        return Traffic(dict(counts), throttled, errors)

    def do_duplicates(self) -> int:
        return len(self.trakt.duplicate_keys())

    def do_state(self) -> StateSnapshot:
        table = Table(self._client("dynamodb"), TABLE, ACCOUNT)
        sync = DynamoSyncStateStore(table).load()
        secrets = self._client("secretsmanager")
        now = utc_from_epoch(self._clock())
        due: dict[str, bool] = {}
        for service, secret_id, margin in (
            ("kinopub", KINOPUB_SECRET, kinopub_margin),
            ("trakt", TRAKT_SECRET, trakt_margin),
        ):
            secret = SecretsManagerTokenStore(secrets, secret_id).load().secret
            expires = secret.expires_at or 0
            due[service] = expires <= (now + margin(secret)).timestamp()
        return StateSnapshot(sync.watermark, sync.last_full_scan, frozenset(DynamoLedgerStore(table).load().keys), due)

    def do_dataset(self) -> Dataset:
        """The data as the lower bound sees it (bench/bounds.py), read straight from the fakes."""
        kp, tr = self.kinopub, self.trakt
        with kp.lock, tr.lock:
            history = sorted(kp.history.values(), key=lambda r: (r.last_seen, r.item_id, r.media_id), reverse=True)
            rows = [Row(r.item_id, r.last_seen, r.deleted) for r in history]
            last_seen: dict[int, int] = {}
            for r in history:
                if not r.deleted:
                    last_seen[r.media_id] = max(last_seen.get(r.media_id, 0), r.last_seen)
            movies = {m.imdb for m in tr.movies.values() if m.imdb}
            shows = {s.imdb: s for s in tr.shows.values() if s.imdb}
            views: list[View] = []
            whole: set[int] = set()  # every video (the generated films have no extras) / every episode watched
            for item in kp.items.values():
                imdb = normal_imdb(item.imdb)
                media = item.media()
                if media and all(m.status == 1 for m in media):
                    whole.add(item.id)
                if item.type in MOVIE_LIKE_TYPES and item.videos:
                    if any(video.status != 1 for video in item.videos):
                        continue
                    times = [v.updated for v in item.videos if v.updated is not None]
                    seen = [last_seen[v.id] for v in item.videos if v.id in last_seen]
                    at = max(times) if times else (max(seen) if seen else None)
                    key = f"movie:{imdb}:{_minute(at)}" if imdb in movies else None
                    views.append(View(item.id, "movie", at, key, None if imdb else f"title:{item.id}"))
                elif item.type in SERIES_TYPES:
                    show = shows.get(imdb) if imdb else None
                    lookup = f"show:{imdb}" if imdb else f"title:{item.id}"
                    for season in item.seasons or []:
                        for episode in season.episodes:
                            if episode.status != 1:
                                continue
                            at = episode.updated if episode.updated is not None else last_seen.get(episode.id)
                            trakt_episode = _episode(show, season.number, episode.number)
                            key = None if trakt_episode is None else f"episode:{trakt_episode}:{_minute(at)}"
                            views.append(View(item.id, "episode", at, key, lookup))
            minutes: dict[ViewKind, list[int]] = {"movie": [], "episode": []}
            for play in tr.plays():
                kind: ViewKind = "movie" if play["type"] == "movie" else "episode"
                minutes[kind].append(int(parse_iso(play["watched_at"])))
            keys = frozenset(tr.play_keys())
        return Dataset(rows, views, {kind: sorted(m) for kind, m in minutes.items()}, keys, frozenset(whole))

    def do_watch_new(self, views: int, shows: int, times: list[int], seed: int) -> list[NewView]:
        """Finish ``views`` unwatched episodes spread over ``shows`` series (the next ones in each, as evenly as
        their unwatched episodes allow; series picked at random, seeded), at ``times`` in order: what a user
        watching since the last run leaves behind."""
        kp = self.kinopub
        if len(times) != views:
            raise ValueError(f"{views} views need as many times, got {len(times)}")
        with kp.lock:
            series = [item for item in sorted(kp.items.values(), key=lambda i: i.id) if item.seasons is not None]
            unwatched = {
                item.id: [(s.number, e.number) for s in item.seasons or [] for e in s.episodes if e.status == -1]
                for item in series
            }
        pool = [item_id for item_id, episodes in unwatched.items() if episodes]
        random.Random(seed).shuffle(pool)
        picked = sorted(pool, key=lambda item_id: -len(unwatched[item_id]))[:shows]
        wanted: list[tuple[int, int, int]] = []
        taken = dict.fromkeys(picked, 0)
        while len(wanted) < views:
            progressed = False
            for item_id in picked:
                if len(wanted) < views and taken[item_id] < len(unwatched[item_id]):
                    wanted.append((item_id, *unwatched[item_id][taken[item_id]]))
                    taken[item_id] += 1
                    progressed = True
            if not progressed:
                raise ValueError(f"{shows} series hold only {len(wanted)} unwatched episodes; {views} wanted")
        added = []
        for (item_id, season, number), at in zip(sorted(wanted), sorted(times), strict=True):
            kp.watch(item_id, season=season, episode=number, at=at)
            added.append(NewView(item_id, season, number, at))
        return added


def _minute(at: int | None) -> str:
    return "unknown" if at is None else key_minute(minute_floor(at))


def _episode(show: TraktShow | None, season: int, number: int) -> int | None:
    if show is None or season not in show.seasons or not 0 < number <= len(show.seasons[season]):
        return None
    return show.seasons[season][number - 1].trakt


def serve(conn: Connection, micros: SharedMicros[int], start_epoch: float) -> None:
    """The services process's main: send the handler's environment, then answer commands until ``stop``."""
    world = World(micros, start_epoch)
    conn.send(("ok", world.env))
    try:
        while True:
            name, kwargs = conn.recv()
            if name == "stop":
                break
            try:
                conn.send(("ok", getattr(world, f"do_{name}")(**kwargs)))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    finally:
        world.close()
        conn.send(("ok", None))


__all__ = ["World", "normal_imdb", "serve"]
