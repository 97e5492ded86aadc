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
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from ..app import credentials
from ..app.config import AppConfig
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
        # no proxy from the environment: the URL is what .config says, reached directly
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __call__(self, event: Event) -> str:
        form = text(event) if self.slack else event.to_dict()
        body = credentials.redact(json.dumps(form, sort_keys=True))
        data = body.encode()
        request = urllib.request.Request(self.url, data=data, method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("User-Agent", f"wardeploy/{__version__}")
        request.add_header("X-Deploy-Event", str(event.kind))
        request.add_header("X-Deploy-Delivery", uuid.uuid4().hex)
        if self.secret is not None:
            request.add_header(SIGNATURE, sign(self.secret.reveal(), data))
        failure = self._send(request)
        if failure:
            self.say(f"warning: notification '{event.kind}' to {self.url} not delivered: {failure}")
        return ""

    def _send(self, request: urllib.request.Request) -> str:
        """Why the notification was not delivered ('' when it was)."""
        try:
            with self.opener.open(request, timeout=self.timeout) as answer:
                answer.read(65536)
                status = answer.status
        except urllib.error.HTTPError as error:
            return f"HTTP {error.code} {error.reason}"
        except urllib.error.URLError as error:
            return str(getattr(error.reason, "strerror", None) or error.reason)
        except TimeoutError:
            return f"no answer within {self.timeout:g} s (notify_timeout)"
        except OSError as error:
            return error.strerror or str(error)
        return "" if 200 <= status < 300 else f"HTTP {status}"


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
