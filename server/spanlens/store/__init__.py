"""SQLite store: schema, numbered migrations and every SQL statement spanlens runs."""
