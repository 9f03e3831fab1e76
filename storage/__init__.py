"""Storage layer: SQLAlchemy models, repositories (queries only, never commit), engine and migrations."""
