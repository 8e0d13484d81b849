"""Slack listeners. `register(app)` wires commands, actions, views, events and App Home onto the Bolt
app built in bot/app.py; the listeners themselves arrive with the Slack app."""
