"""`/flywheel evaluate MODEL VERSION` over signed HTTP: a comparison with production that failed (the
latest week's labels had not landed) is run again once the cause is fixed, and the ML engineer is told how."""

from sqlalchemy import func, select

from bot.ids import ActionId
from jobs.monitor import load_spec
from jobs.retrain import training_window
from store import registry, work
from store.models import Evaluation, WorkItem, WorkState
from tests.slack_world import DANA, ELI, MODEL, NOW


def _spec_data(world, **data) -> dict:
    """Change where the model's data is read from, as `flywheel apply` would; returns the old section."""
    with world.db.session() as s:
        model = registry.get_model(session=s, key=MODEL)
        old = dict(model.spec["data"])
        model.spec = {**model.spec, "data": {**old, **data}}
    return old


def _evaluations(world, number: int) -> int:
    with world.db.session() as s:
        version = registry.get_version(session=s, model_key=MODEL, number=number)
        return s.execute(select(func.count()).select_from(Evaluation)
                         .where(Evaluation.version_id == version.id)).scalar()


def _candidates(world) -> list[str]:
    return [ts for (channel, ts), m in world.fake.messages.items()
            if channel == "C0ML" and m["text"].startswith(f"{MODEL} v2 is ready for review")]


def _labels_only_before_the_holdout(world) -> dict:
    """The production source as it reads while the held-out week's labels have not landed yet."""
    with world.db.session() as s:
        spec = load_spec(registry.get_model(session=s, key=MODEL))
    _, held_out = training_window(spec, NOW)
    query = f"SELECT * FROM scored_transactions WHERE {spec.data.timestamp} < '{held_out}'"
    return _spec_data(world, production={"url": "sqlite:///data/transactions.db", "table": None, "query": query})


def test_a_comparison_that_failed_is_run_again_with_evaluate(world):
    working = _labels_only_before_the_holdout(world)
    sent = world.command(f"retrain {MODEL} card age drifted", ELI)
    world.ops.join()

    # The version is trained and kept; the asker hears why it was not compared and what to type later.
    told = [r["text"] for r in world.responses(sent.response_url)]
    assert len(told) == 1 and told[0].startswith(f"Retrained {MODEL} v2, but comparing it with production "
                                                  f"failed: no labelled rows for {MODEL} between ")
    assert told[0].endswith("so the versions can't be compared yet. "
                            f"Try again with `/flywheel evaluate {MODEL} v2`.")
    assert _evaluations(world, 2) == 0 and _candidates(world) == []
    with world.db.session() as s:
        retrain = s.execute(select(WorkItem).where(WorkItem.kind == "retrain")).scalar_one()
        assert retrain.state == WorkState.done and retrain.result == {"version": 2, "compared": False}

    # Still broken: the evaluate item fails with the same advice, and nothing is posted as ready.
    again = world.command(f"evaluate {MODEL} v2", ELI)
    assert again.body["text"] == (f"Comparing {MODEL} v2 with production on the latest labelled window. "
                                  "The comparison goes to the ML engineers' channel.")
    world.ops.join()
    failed = [r["text"] for r in world.responses(again.response_url)]
    assert len(failed) == 1 and failed[0].startswith(f"Comparing {MODEL} v2 with production failed: no labelled ")
    assert failed[0].endswith(f"Try again with `/flywheel evaluate {MODEL} v2`.")
    assert _evaluations(world, 2) == 0 and _candidates(world) == []

    # Fixed: the comparison is stored and the candidate posted, with its Submit button.
    _spec_data(world, **working)
    fixed = world.command(f"evaluate {MODEL} 2", ELI)
    world.ops.join()
    assert world.responses(fixed.response_url) == []
    assert _evaluations(world, 2) == 1
    candidate = world.posted("C0ML", f"{MODEL} v2 is ready for review")
    assert world.click(ActionId.submit_for_signoff, candidate, ELI).status == 200
    world.ops.join()
    with world.db.session() as s:
        kinds = [(i.kind, i.state) for i in s.execute(select(WorkItem).order_by(WorkItem.id)).scalars()]
    assert kinds == [("retrain", WorkState.done), ("evaluate", WorkState.failed), ("evaluate", WorkState.done)]

    # In review, the comparison the signers were shown stays as it is.
    in_review = world.command(f"evaluate {MODEL} v2", ELI)
    assert in_review.body["text"] == (f"{MODEL} v2 is in review, so its comparison stays as it was; only "
                                      "candidates are compared again.")
    assert _evaluations(world, 2) == 1


def test_evaluate_names_what_is_wrong_and_changes_nothing(world):
    def said(text: str, user: str = ELI) -> str:
        return world.command(text, user).body["text"]

    assert said(f"evaluate {MODEL}") == "`evaluate` needs more. Usage: `/flywheel evaluate MODEL VERSION`"
    assert said(f"evaluate {MODEL} latest") == ("'latest' is not a version number like 2 or v2. "
                                               "Usage: `/flywheel evaluate MODEL VERSION`")
    assert said("evaluate fraud-detectr 2") == "No model called fraud-detectr. Did you mean fraud-detector?"
    assert said(f"evaluate {MODEL} v7") == f"{MODEL} has no version v7. Versions: v1."
    assert said(f"evaluate {MODEL} v1") == (f"{MODEL} v1 is production, so its comparison stays as it was; only "
                                           "candidates are compared again.")
    assert said(f"evaluate {MODEL} v1", DANA).startswith(f"You can't compare {MODEL} v1 with production: that "
                                                        "needs the ml engineer role")
    assert "evaluate MODEL VERSION" in said("help") and "evaluate MODEL VERSION" not in said("help", DANA)
    world.ops.join()
    with world.db.session() as s:
        assert s.execute(select(func.count()).select_from(WorkItem)).scalar() == 0


def test_a_version_already_waiting_is_not_queued_twice(world):
    sent = world.command(f"retrain {MODEL}", ELI)
    world.ops.join()
    assert world.responses(sent.response_url) == []
    with world.db.session() as s:  # queue a comparison without running it, as the web process does for the worker
        model = registry.get_model(session=s, key=MODEL)
        work.request_evaluation(session=s, model=model, requested_by=ELI, entry={"number": 2})
    assert world.command(f"evaluate {MODEL} 2", ELI).body["text"] == \
        f"{MODEL} v2 is already waiting to be compared with production."
    with world.db.session() as s:
        item = s.execute(select(WorkItem).where(WorkItem.kind == "evaluate")).scalar_one()
        assert item.payload["versions"] == [{"number": 2}]
        # The item moves on to another version after v2 failed: v2's turn in it is over.
        item.payload, item.result = {"versions": [{"number": 2}, {"number": 3}]}, {"evaluated": [], "failed": [2]}
    assert world.command(f"evaluate {MODEL} 2", ELI).body["text"] == (
        f"Another version of {MODEL} is being compared with production right now. Ask for v2 again when that "
        "comparison is posted.")


def test_a_failure_told_after_the_response_url_expired_goes_to_the_ml_engineers_channel(world):
    """A response URL lasts 30 minutes; a worker that was down longer still tells someone."""
    _labels_only_before_the_holdout(world)
    world.command(f"retrain {MODEL}", ELI)
    world.ops.join()
    expired = f"{world.fake.base_url}/response/expired"  # Slack answers 404 to a URL past its time
    world.ops.request_evaluation(world.ops.actor(ELI), MODEL, 2, response_url=expired)
    world.ops.join()
    told = [m["text"] for (channel, _), m in world.fake.messages.items()
            if channel == "C0ML" and m["text"].startswith(f"Comparing {MODEL} v2 with production failed")]
    assert len(told) == 1 and told[0].endswith(f"Try again with `/flywheel evaluate {MODEL} v2`.")
