"""Repositories: queries only. They flush when an id is needed but never commit: services own transactions."""
