"""The notifier's answers through Slack's response URLs (news of a retrain or a comparison for whoever asked
for it), over kept-alive connections, with failures that never show the URL.

Listeners answer with Bolt's own `respond`. This replaced it on the request path too until 2026-12-05,
when bench_ack during a check cycle showed no difference: View details at 50 concurrent, p99 83-182 ms
and 0.90-1.11 ms of server CPU a click with it, 82-183 ms and 0.99-1.19 ms with Bolt's (six alternating
runs each, SQLite, 2 cores shared with other jobs). Its gain is a TLS handshake per answer against
hooks.slack.com, which the benchmark's plain-HTTP fake Slack cannot show.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import urllib3
from slack_sdk.models.blocks import Block
from urllib3.util import Retry

from store.errors import FlywheelError


class ResponseUrlError(FlywheelError):
    pass


class ResponseUrls:
    def __init__(self, *, timeout: float = 10.0):
        # A connection refused is retried; so is one dropped mid-answer once: a kept-alive connection the
        # other end closed while idle fails that way, before Slack saw anything (at worst one answer twice).
        retries = Retry(total=3, connect=2, read=1, status=0, redirect=0, other=0, allowed_methods=None)
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=8, retries=retries,
                                         timeout=urllib3.Timeout(connect=timeout, read=timeout))

    def post(self, url: str, message: dict[str, Any]) -> None:
        """POST one answer; raises ResponseUrlError, naming what Slack said but never the URL (it is a
        credential for the conversation)."""
        try:
            answer = self._pool.request("POST", url, body=json.dumps(message).encode(),
                                        headers={"Content-Type": "application/json; charset=utf-8"})
        except urllib3.exceptions.HTTPError as exc:
            raise ResponseUrlError(f"could not reach Slack's response URL: {type(exc).__name__}") from None
        if answer.status != 200:
            raise ResponseUrlError(f"Slack refused an answer to its response URL: HTTP {answer.status} "
                                   f"{answer.data[:200].decode(errors='replace')}")

    def say(self, url: str, text: str, blocks: Sequence[Block] = ()) -> None:
        """A private answer to whoever the response URL belongs to (the notifier's follow-ups); `text`
        alone, or as the fallback of `blocks`."""
        message = {"text": text, "response_type": "ephemeral", "replace_original": False}
        if blocks:
            message["blocks"] = [b.to_dict() for b in blocks]
        self.post(url, message)
