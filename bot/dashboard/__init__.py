"""The dashboard behind every "View details" and "Model card" button: read-only pages served by
`flywheel serve` under FLYWHEEL_PUBLIC_URL, next to Slack's endpoint.

How a person gets in, without a login of its own and without the registry open to the network:

1. Alerts and sign-off requests are posted to channels, so a URL in them would be the same for every
   reader. Their "View details" and "Model card" buttons are therefore action buttons that carry the
   page's address (bot/blocks/common.py `link_button`). Slack tells Flywheel who clicked; Flywheel
   answers that person alone (an ephemeral message, or a small modal in App Home) with a link signed
   for them and that page (handlers/actions.py).
2. The link's token is an HMAC under FLYWHEEL_SECRET_KEY of the Slack user, the page and an expiry
   (FLYWHEEL_LINK_DAYS, default 7). The first visit trades it for a session cookie (HttpOnly, SameSite=Lax,
   Secure behind https, 12 hours) and reloads the page without the token in its address.
3. A missing, altered, expired or someone else's link gets 401 and a short page saying how to get a fresh
   one: `/flywheel status MODEL` in Slack, then View details.
4. Pages show what the person's roles allow (bot/services/pages/viewer.py `Viewer`); nothing can be changed here:
   actions stay in Slack, where they are audited.

Changing FLYWHEEL_SECRET_KEY revokes every link and session at once.
"""
