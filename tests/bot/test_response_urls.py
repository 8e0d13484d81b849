"""Answers through Slack's response URLs: kept-alive connections, and failures that say what happened
without showing the URL (it is a credential for the conversation)."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from slack_sdk.models.blocks import SectionBlock

from bot.response_urls import ResponseUrlError, ResponseUrls
from tests.support.slack_fake import FakeSlack


@pytest.fixture
def fake():
    with FakeSlack() as slack:
        yield slack


def test_answers_reuse_one_connection_and_arrive_as_private_answers(fake):
    urls = ResponseUrls()
    first, second = fake.response_url(), fake.response_url()
    urls.say(first, "Your link", [SectionBlock(text="Your link")])
    urls.post(second, {"text": "More results", "replace_original": True})
    urls.say(first, "Retraining finished")
    assert fake.responses[first] == [
        {"text": "Your link", "response_type": "ephemeral", "replace_original": False,
         "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Your link"}}]},
        {"text": "Retraining finished", "response_type": "ephemeral", "replace_original": False}]
    assert fake.responses[second] == [{"text": "More results", "replace_original": True}]
    peers = {call.peer for call in fake.calls if call.method == "response"}
    assert len(peers) == 1, peers  # three answers, one connection
    assert fake.invalid == []


def test_a_refused_answer_names_the_status_but_not_the_url(fake):
    url = fake.response_url().replace("/response/", "/response/9999")  # a URL Slack never issued
    with pytest.raises(ResponseUrlError, match="HTTP 404 no_service") as refused:
        ResponseUrls().say(url, "hello")
    assert url not in str(refused.value) and "9999" not in str(refused.value)


def test_slack_unreachable_is_an_error_that_names_no_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    url = f"http://127.0.0.1:{port}/actions/T0/1/secret-part"
    with pytest.raises(ResponseUrlError, match="could not reach Slack's response URL") as failed:
        ResponseUrls(timeout=2).say(url, "hello")
    assert "secret-part" not in str(failed.value) and str(port) not in str(failed.value)


def test_a_connection_slack_closed_while_idle_is_replaced_without_losing_the_answer():
    """A server that answers one request per connection, then hangs up while the client keeps it."""
    received: list[bytes] = []
    hung_up = threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve_twice() -> None:
        for _ in range(2):
            connection, _ = server.accept()
            with connection:
                data = b""
                while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
                    data += connection.recv(65536)
                received.append(data.partition(b"\r\n\r\n")[2])
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
            hung_up.set()

    thread = threading.Thread(target=serve_twice, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/actions/T0/1/x"
    urls = ResponseUrls(timeout=5)
    urls.say(url, "first")
    assert hung_up.wait(timeout=10)  # the server has closed the connection the pool keeps
    urls.say(url, "second")
    thread.join(timeout=10)
    server.close()
    assert [json.loads(body)["text"] for body in received] == ["first", "second"]


def _length(request: bytes) -> int:
    head = request.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    return int(head.split("content-length:")[1].split("\r\n")[0]) if "content-length:" in head else 0
