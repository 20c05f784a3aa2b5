"""The two implementations of ``gateway.db.Database``: SQLite (``sqlite``) and PostgreSQL
(``postgres``), each with its own migration history (``*_schema``)."""
