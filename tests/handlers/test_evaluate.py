"""`/flywheel evaluate MODEL VERSION` over signed HTTP: a comparison with production that failed (the
latest week's labels had not landed) is run again once the cause is fixed, and the ML engineer is told how."""

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement
from sqlalchemy import func, select

from bot.ids import ActionContext, ActionId
from jobs.monitor import check_model, load_spec
from jobs.retrain import training_window
from store import registry, work
from store.models import Alert, Evaluation, WorkItem, WorkState
from tests.support.slack_world import DANA, ELI, MODEL, NOW


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
    """Candidate messages posted in the ML engineers' channel (not the thread replies that point to them)."""
    return [ts for (channel, ts), m in world.fake.messages.items()
            if channel == "C0ML" and not m.get("thread_ts")
            and m["text"].startswith(f"{MODEL} v2 is ready for review")]


def _labels_only_before_the_holdout(world) -> dict:
    """The production source as it reads while the held-out week's labels have not landed yet."""
    with world.db.session() as s:
        spec = load_spec(registry.get_model(session=s, key=MODEL))
    _, held_out = training_window(spec, NOW)
    query = f"SELECT * FROM scored_transactions WHERE {spec.data.timestamp} < '{held_out}'"
    return _spec_data(world, production={"url": "sqlite:///data/transactions.db", "table": None, "query": query})


def _compare_again(message: dict) -> ButtonElement | None:
    """A message's Compare again button, its blocks parsed back with slack_sdk as Slack would read them."""
    return next((e for b in Block.parse_all(message.get("blocks") or []) if isinstance(b, ActionsBlock)
                 for e in b.elements if isinstance(e, ButtonElement) and e.action_id == ActionId.compare_again), None)


def _offers(world, alert: tuple[str, str]) -> list[tuple[str, str]]:
    """Replies in an alert's thread that offer Compare again, oldest first."""
    offers = [(c, ts) for (c, ts), m in world.fake.messages.items()
              if c == alert[0] and m.get("thread_ts") == alert[1] and _compare_again(m)]
    return sorted(offers, key=lambda place: float(place[1]))


def _evaluate_items(world) -> list[WorkState]:
    with world.db.read() as s:
        return list(s.execute(select(WorkItem.state).where(WorkItem.kind == "evaluate")
                              .order_by(WorkItem.id)).scalars())


def test_a_comparison_that_failed_is_run_again_with_evaluate(world):
    working = _labels_only_before_the_holdout(world)
    sent = world.command(f"retrain {MODEL} card age drifted", ELI)
    world.ops.join()

    # The version is trained and kept; the asker hears why it was not compared and what to type later.
    told = [r["text"] for r in world.responses(sent.response_url)]
    assert len(told) == 1 and told[0].startswith(f"Retrained {MODEL} v2, but comparing it with production "
                                                  f"failed: no labelled rows for {MODEL} between ")
    assert told[0].endswith("so the versions can't be compared yet. Once that is fixed, press Compare again or "
                            f"type `/flywheel evaluate {MODEL} v2`.")
    assert _evaluations(world, 2) == 0 and _candidates(world) == []
    offered = _compare_again(world.responses(sent.response_url)[0])  # the private answer carries the button too
    assert offered is not None and ActionContext.decode(offered.value) == ActionContext(model=MODEL, version=2)
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
    assert failed[0].endswith(f"Compare again or type `/flywheel evaluate {MODEL} v2`.")
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
    assert said(f"evaluate {MODEL} v1", DANA).startswith(f"Comparing {MODEL} v1 with production needs the ML engineer "
                                                        "role on Card fraud detection")
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
    world.ops.retraining.request_evaluation(world.ops.people.actor(ELI), MODEL, 2, response_url=expired)
    world.ops.join()
    told = [m["text"] for (channel, _), m in world.fake.messages.items()
            if channel == "C0ML" and m["text"].startswith(f"Comparing {MODEL} v2 with production failed")]
    assert len(told) == 1 and told[0].endswith(f"Compare again or type `/flywheel evaluate {MODEL} v2`.")


def test_compare_again_in_the_alert_thread_runs_the_comparison_and_settles(world):
    """Retrain clicked on a drift alert; the comparison fails for want of labels. The failure in the alert's
    thread carries Compare again: refused to someone without the role, failing again while the labels are
    missing (a new offer, the clicked one settled), and posting the candidate once they have landed."""
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    alert = world.posted("C0ML", f"Input drift on {MODEL} v1")
    working = _labels_only_before_the_holdout(world)
    world.click(ActionId.retrain, alert, ELI)
    world.ops.join()
    [first] = _offers(world, alert)
    assert world.fake.messages[first]["text"].startswith(f"Retrained {MODEL} v2, but comparing it with production "
                                                         "failed: no labelled rows")
    with world.db.read() as s:
        alert_id = s.execute(select(Alert.id).where(Alert.message_ts == alert[1])).scalar_one()
    assert ActionContext.decode(_compare_again(world.fake.messages[first]).value) == \
        ActionContext(model=MODEL, version=2, alert=alert_id)

    refused = world.click(ActionId.compare_again, first, DANA)
    assert [r["text"] for r in world.responses(refused.response_url)] == [
        f"Comparing {MODEL} v2 with production needs the ML engineer role on Card fraud detection; "
        "you have business there."]
    assert _evaluate_items(world) == [] and _compare_again(world.fake.messages[first]) is not None

    still_missing = world.click(ActionId.compare_again, first, ELI)
    world.ops.join()
    assert _compare_again(world.fake.messages[first]) is None  # settled: who asked, no button to press twice
    assert f"Compare again asked by <@{ELI}>" in str(world.fake.messages[first]["blocks"])
    [second] = _offers(world, alert)  # the new failure's, the settled one's gone
    assert second != first
    assert world.fake.messages[second]["text"].startswith(f"Comparing {MODEL} v2 with production failed: no ")
    assert _evaluate_items(world) == [WorkState.failed] and world.responses(still_missing.response_url) == []

    _spec_data(world, **working)
    world.click(ActionId.compare_again, second, ELI)
    world.ops.join()
    assert _evaluations(world, 2) == 1 and len(_candidates(world)) == 1
    assert any(m["text"].startswith(f"{MODEL} v2 is ready for review") for m in world.fake.thread(*alert))
    assert _offers(world, alert) == [] and _evaluate_items(world) == [WorkState.failed, WorkState.done]


def test_compare_again_on_a_version_already_waiting_says_so_and_keeps_the_button(world):
    world.command(f"retrain {MODEL}", ELI)
    world.ops.join()
    # A comparison failure that reached nobody privately goes to the ML engineers' channel, with its button.
    world.ops.notifier.comparison_failed(MODEL, 2, f"Comparing {MODEL} v2 with production failed: source down.",
                                         alert_id=None, response_url=None)
    offer = next((c, ts) for (c, ts), m in world.fake.messages.items() if c == "C0ML" and _compare_again(m))
    with world.db.session() as s:  # one is queued for the worker already
        work.request_evaluation(session=s, model=registry.get_model(session=s, key=MODEL), requested_by=ELI,
                                entry={"number": 2})
    clicked = world.click(ActionId.compare_again, offer, ELI)
    assert [r["text"] for r in world.responses(clicked.response_url)] == [
        f"{MODEL} v2 is already waiting to be compared with production."]
    assert _compare_again(world.fake.messages[offer]) is not None
    assert _evaluate_items(world) == [WorkState.queued]


def test_compare_again_in_a_private_answer_replaces_that_answer(world):
    """The failure told privately to whoever typed `/flywheel retrain`: its button queues the comparison, and
    the answer (Slack sends no blocks of it to settle) is replaced by who pressed it and what happens next."""
    working = _labels_only_before_the_holdout(world)
    sent = world.command(f"retrain {MODEL}", ELI)
    [answer] = world.responses(sent.response_url)
    _spec_data(world, **working)
    pressed = world.click_private(ActionId.compare_again, answer, ELI)
    assert pressed.status == 200
    world.ops.join()
    assert world.responses(pressed.response_url) == [{
        "text": f"Compare again asked by <@{ELI}>. Comparing {MODEL} v2 with production on the latest labelled "
                "window. The comparison goes to the ML engineers' channel.",
        "response_type": "ephemeral", "replace_original": True}]
    assert _evaluations(world, 2) == 1 and len(_candidates(world)) == 1
