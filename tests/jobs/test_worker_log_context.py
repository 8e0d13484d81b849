"""The worker runs each work item with its log context bound (bot/logs.py): the item, its model and version,
and the id of the Slack request that queued it, recorded on the item when it was queued."""

from structlog.contextvars import bound_contextvars, get_contextvars

from bot.logs import stamp_request_ids
from jobs.worker import Worker
from store import work
from tests.support.factories import fraud_project

ELI = "U0ML0001"


def test_each_work_item_runs_with_the_request_that_asked_for_it_bound_and_nothing_after(db):
    stamp_request_ids()
    with db.session() as s:
        model = fraud_project(s)
        with bound_contextvars(request_id="req-deploy-0001"):
            deploy, _ = work.request(session=s, model=model, kind="deploy", requested_by=ELI, payload={"version": 2})
        retrain, _ = work.request(session=s, model=model, kind="retrain", requested_by=ELI, payload={})
        ids = deploy.id, retrain.id
    seen = []
    worker = Worker(db=db, check=lambda *_: None, run_work=lambda item_id: seen.append((item_id, get_contextvars())))
    assert worker.drain_work() == 2
    assert seen == [(ids[0], {"work_item": ids[0], "work": "deploy", "model": "fraud-detector", "version": 2,
                              "request_id": "req-deploy-0001"}),
                    (ids[1], {"work_item": ids[1], "work": "retrain", "model": "fraud-detector"})]
    assert get_contextvars() == {}
