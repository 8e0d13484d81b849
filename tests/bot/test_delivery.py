import json

import pytest
from slack_sdk.models.blocks import HeaderBlock, SectionBlock

from bot.blocks.common import InvalidMessage, Message, md
from bot.delivery import FolderOutbox, mrkdwn_to_html
from jobs.incidents import ChartRef


def _message(tmp_path, persona="business", text="Missed fraud is up 41%"):
    png = tmp_path / "chart.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    return Message(kind="kpi_alert", persona=persona, model_key="fraud-detector", text=text, channel="C0BIZ",
                   blocks=(HeaderBlock(text=text), SectionBlock(text=md("*$18,300* missed, owner <@U0ML0001>"))),
                   charts=(ChartRef(path=str(png), title="Fraud amount missed", alt_text="rose to $18,300"),))


def test_outbox_writes_json_charts_and_a_preview_grouped_by_persona(tmp_path):
    outbox = FolderOutbox(tmp_path / "out", people={"U0ML0001": "Eli"})
    ref = outbox.post(_message(tmp_path))
    outbox.post(_message(tmp_path, persona="it_ops", text="fraud-detector v2 is live"))
    outbox.reply(ref, "Still breaching: $21,000")
    folder = tmp_path / "out" / "messages" / "001-business-kpi_alert"
    record = json.loads((folder / "message.json").read_text())
    assert record["channel"] == "C0BIZ" and record["blocks"][0]["type"] == "header"
    assert record["thread"] == [{"text": "Still breaching: $21,000"}]
    assert (folder / "chart.png").read_bytes().startswith(b"\x89PNG")
    page = outbox.index.read_text()
    assert page.index("Business stakeholder") < page.index("IT operations")
    assert "<b>$18,300</b> missed, owner <span class=\"mention\">@Eli</span>" in page
    assert 'src="messages/001-business-kpi_alert/chart.png"' in page and "Still breaching: $21,000" in page


def test_an_invalid_message_is_not_written(tmp_path):
    outbox = FolderOutbox(tmp_path / "out")
    with pytest.raises(InvalidMessage):
        outbox.post(Message(kind="x", persona="business", model_key="m", text=" ", blocks=()))
    assert list((tmp_path / "out" / "messages").iterdir()) == []


def test_mrkdwn_is_escaped_before_it_is_formatted():
    html = mrkdwn_to_html("<script>alert(1)</script> *bold* <https://x.example/a|link>", {})
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<b>bold</b>' in html and '<a href="https://x.example/a">link</a>' in html


def test_a_reply_with_buttons_is_written_and_previewed_with_them(tmp_path):
    from bot.blocks import ml_engineer

    outbox = FolderOutbox(tmp_path / "out")
    ref = outbox.post(_message(tmp_path, persona="ml_engineer"))
    text = "Comparing fraud-detector v2 with production failed: no labelled rows yet."
    outbox.reply_message(ref, ml_engineer.work_failed(
        "fraud-detector", text, offer=ml_engineer.compare_again("fraud-detector", 2, alert_id=7)))
    record = json.loads((tmp_path / "out" / "messages" / "001-ml_engineer-kpi_alert" / "message.json").read_text())
    [reply] = record["thread"]
    assert reply["text"] == text and [b["type"] for b in reply["blocks"]] == ["section", "actions"]
    page = outbox.index.read_text()
    thread = page[page.index('<div class="thread">'):]
    assert "no labelled rows yet." in thread and '<span class="btn primary">Compare again</span>' in thread
    with pytest.raises(InvalidMessage):  # checked like any post: nothing half-written
        outbox.reply_message(ref, Message(kind="x", persona="ml_engineer", model_key="m", text=" ", blocks=()))
    assert len(json.loads((tmp_path / "out" / "messages" / "001-ml_engineer-kpi_alert" / "message.json")
                          .read_text())["thread"]) == 1


def test_an_edit_or_reply_of_a_message_posted_into_another_folder_is_kept_here(tmp_path):
    """`flywheel check` on the demo's registry edits alerts the demo posted into its preview folder: the edit
    and the thread reply land in this folder, under the reference they were posted as, also after a reload."""
    demo = FolderOutbox(tmp_path / "preview")
    ref = demo.post(_message(tmp_path))
    later = FolderOutbox(tmp_path / "outbox")
    later.update(ref, _message(tmp_path, text="Missed fraud is up 60%"))
    later.reply(ref, "Still breaching: $24,000")
    [edited] = later.messages()
    assert edited.text == "Missed fraud is up 60%"
    reloaded = FolderOutbox(tmp_path / "outbox")
    reloaded.reply(ref, "Resolved")
    record = json.loads(next((tmp_path / "outbox" / "messages").glob("*/message.json")).read_text())
    assert record["ref"] == ref and record["text"] == "Missed fraud is up 60%"
    assert [r["text"] for r in record["thread"]] == ["Still breaching: $24,000", "Resolved"]
    assert len(list((tmp_path / "outbox" / "messages").iterdir())) == 1
