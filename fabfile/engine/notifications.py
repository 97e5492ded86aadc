"""Notifications: each run event POSTed to ``notify_url`` as JSON, signed.

The body is the event (`Event.to_dict`), or with ``notify_format = slack`` a Slack
incoming webhook's ``{"text": ...}``. With a secret (``$DEPLOY_SECRET_NOTIFY`` or the
owner-only ``notify_secret_file``, `fabfile.app.credentials`) the body is signed as
GitHub signs its webhooks: ``X-Deploy-Signature: sha256=<hex HMAC-SHA256 of the body>``.

A notification is news, not part of the deploy: one that is refused, times out or
gets no 2xx answer is one warning line, and the run goes on as it would have.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path

from ..app import credentials
from ..app.config import AppConfig
from ..cluster import http
from ..version import __version__
from .events import Event, Kind

SIGNATURE = "X-Deploy-Signature"
SECRET_VARIABLE = "DEPLOY_SECRET_NOTIFY"  # what `credentials.load` reads for "notify"
Say = Callable[[str], None]


class Notifier:
    """The listener that sends every event to ``notify_url``."""

    def __init__(self, config: AppConfig, say: Say) -> None:
        self.url = config.notify_url
        self.slack = config.notify_format == "slack"
        self.timeout = config.notify_timeout
        self.say = say
        self.secret = _secret(config)

    def __call__(self, event: Event) -> str:
        form = text(event) if self.slack else event.to_dict()
        data = credentials.redact(json.dumps(form, sort_keys=True)).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"wardeploy/{__version__}",
            "X-Deploy-Event": str(event.kind),
            "X-Deploy-Delivery": uuid.uuid4().hex,
        }
        if self.secret is not None:
            headers[SIGNATURE] = sign(self.secret.reveal(), data)
        failure = self._send(headers, data)
        if failure:
            where = urllib.parse.urlsplit(self.url)  # a webhook's path may be its secret
            self.say(
                f"warning: notification '{event.kind}' to {where.scheme}://{where.netloc} "
                f"(notify_url) not delivered: {failure}"
            )
        return ""

    def _send(self, headers: dict[str, str], data: bytes) -> str:
        """Why the notification was not delivered ('' when it was). Through the package's
        one HTTP client: directly (no proxy), no redirect followed (a 3xx is no 2xx)."""
        timeout = self.timeout
        try:
            answer = http.request(
                "POST",
                self.url,
                connect_timeout=timeout,
                read_timeout=timeout,
                headers=headers,
                body=data,
                max_body=65536,
            )
        except http.HttpError as error:
            late = error.failure is http.Failure.TIMEOUT
            return f"{error.reason} ({timeout:g} s, notify_timeout)" if late else error.reason
        return "" if 200 <= answer.status < 300 else f"HTTP {answer.status}"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _secret(config: AppConfig) -> credentials.Secret | None:
    """The signing secret: ``$DEPLOY_SECRET_NOTIFY``, else ``notify_secret_file`` (refused
    when others can read it); None when neither is given (events go unsigned)."""
    file = Path(config.notify_secret_file) if config.notify_secret_file else None
    if file is None and not os.environ.get(SECRET_VARIABLE):
        return None
    return credentials.load("notify", file)


def text(event: Event) -> dict[str, str]:
    """The Slack form: one line that says what happened, to what, by whom."""
    facts = event.facts
    what = {
        Kind.STARTED: f"{facts.action} of {facts.version} started",
        Kind.BATCH: f"batch {event.verdict.batch if event.verdict else '?'} verdict",
        Kind.SWITCHING: f"switching {', '.join(event.hosts)} to {facts.version}",
        Kind.FINISHED: f"{facts.action} of {facts.version} finished",
        Kind.ROLLED_BACK: f"rolled back to {facts.version}",
        Kind.FAILED: f"{facts.action} of {facts.version} {event.outcome}",
    }[event.kind]
    line = f"{facts.app}: {what} on {len(facts.hosts)} node(s) (run {facts.run}, by {facts.user})"
    if event.verdict is not None:
        line += f": {event.verdict.verdict}: {event.verdict.reasons}"
    if event.message:
        line += f"\n{event.message}"
    return {"text": line}
