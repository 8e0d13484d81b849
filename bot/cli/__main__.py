"""`python -m bot.cli`: the `flywheel` command."""

from bot.cli import main

main()
