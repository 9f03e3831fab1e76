"""tsur-bot: the Telegram bot of the regional management center (ЦУР) of the Chechen Republic."""
