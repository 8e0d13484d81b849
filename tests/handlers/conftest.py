"""Fixtures the Slack handler tests share."""

from __future__ import annotations

import pytest

from tests.support.slack_fake import FakeSlack


@pytest.fixture
def slack():
    """A fake Slack Web API; the test fails if the app sent it a payload Slack would refuse."""
    with FakeSlack() as fake:
        yield fake
        assert fake.invalid == [], "the app sent a payload Slack would refuse"
