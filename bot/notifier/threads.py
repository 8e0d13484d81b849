"""Where news of an alert goes: the alert's own message, or the storm digest that carries it (read from the
registry), and the replies posted there."""

from __future__ import annotations

from dataclasses import dataclass

from bot.notifier.outlet import Outlet
from store import digests, registry
from store.models import Alert, WorkItem
from store.outbox import REF_PREFIX as OUTBOX_PREFIX
from store.outbox import ref_of as outbox_ref


@dataclass(frozen=True)
class Place:
    """Where an alert's news goes: its own message, or the storm digest that carries it."""

    thread: str  # replies go here: the alert's message, or the digest's
    full: str | None  # the alert's full message to edit: its own, the copy in the digest's thread, or the
    # digested post a click will send
    digest_id: int | None
    model_key: str


class AlertThreads:
    def __init__(self, outlet: Outlet) -> None:
        self.outlet = outlet

    def thread_of(self, alert_id: int | None) -> str | None:
        """Where news of an alert goes, as CHANNEL:TS (or an outbox ref until sent), read from the
        registry: the alert's message, or the storm digest that carries it."""
        place = self.place(alert_id)
        return place.thread if place else None

    def place(self, alert_id: int | None) -> Place | None:
        if alert_id is None:
            return None
        with self.outlet.db.read() as s:
            alert = s.get(Alert, alert_id)
            if alert is None:
                return None
            if alert.digest is not None:
                if not alert.digest.message_ref:
                    return None
                full = alert.digest_thread_ref
                if full is None and (row := digests.full_message_row(session=s, alert_id=alert.id)) is not None:
                    full = outbox_ref(row.id)
                return Place(alert.digest.message_ref, full, alert.digest_id, alert.model.key)
            if not alert.message_ts:
                return None
            ref = alert.message_ts if alert.message_ts.startswith(OUTBOX_PREFIX) else \
                f"{alert.channel}:{alert.message_ts}"
            return Place(ref, ref, None, alert.model.key)

    def reply(self, place: Place, text: str) -> None:
        # Many models share a digest's thread: say which one the news is about.
        self.outlet.delivery.reply(place.thread, f"*{place.model_key}* · {text}" if place.digest_id else text)

    def say_in_thread(self, alert_id: int | None, text: str) -> bool:
        if (place := self.place(alert_id)) is None:
            return False
        self.reply(place, text)
        return True

    def origin_alert(self, model_key: str, number: int) -> int | None:
        """The alert a version was trained to answer (through the retrain request that made it), so its
        sign-offs and deployment are told in that alert's thread."""
        with self.outlet.db.read() as s:
            version = registry.get_version(session=s, model_key=model_key, number=number)
            if (alert_id := version.parameters.get("alert")) is not None:
                return int(alert_id)
            item_id = version.parameters.get("work_item")
            item = s.get(WorkItem, item_id) if item_id is not None else None
            alert_id = (item.payload or {}).get("alert") if item is not None else None
            return int(alert_id) if alert_id is not None else None
