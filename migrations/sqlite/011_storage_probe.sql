-- One row that the health check writes while the last write failed for the storage's sake (a
-- full disk, an I/O error, a database that takes no writes), to learn when writes work again.
CREATE TABLE storage_probe (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  writes BIGINT NOT NULL
);
