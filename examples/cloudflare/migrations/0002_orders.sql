-- The example's business table: an order row commits with its outbox message in one batch.
CREATE TABLE IF NOT EXISTS orders (
  id TEXT PRIMARY KEY,
  total REAL NOT NULL,
  created_at INTEGER NOT NULL
);
