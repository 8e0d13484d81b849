"""What the dashboard's pages show, as plain data for bot/dashboard: read with a fixed number of queries
per page whatever the history holds, and only the parts the viewer's roles allow (viewer.py).

One module per page (model, alert, project and portfolio, card, index); reads.py holds the reads they
share and shapes.py the plain data they return.
"""

from bot.services.pages.alert import AlertPage, alert_page
from bot.services.pages.card import Card, model_card
from bot.services.pages.constants import DEFAULT_DAYS, RANGES
from bot.services.pages.index import index
from bot.services.pages.model import model_page
from bot.services.pages.project import OVERDUE, Portfolio, portfolio, project_page
from bot.services.pages.viewer import Viewer, project_of_page, viewer

__all__ = ["DEFAULT_DAYS", "OVERDUE", "RANGES", "AlertPage", "Card", "Portfolio", "Viewer", "alert_page", "index", "model_card",
           "model_page", "portfolio", "project_of_page", "project_page", "viewer"]
