/* The store back ends, private to src/store/. Each one is a struct store_ops
 * defined in its own store_<name>.c; store.c lists them in one table. */
#ifndef KP_STORE_BACKENDS_H
#define KP_STORE_BACKENDS_H

#include "store/store.h"

/* SQLite back end, "sqlite:PATH" (store_sqlite.c). */
extern const struct store_ops store_sqlite_ops;
/* PostgreSQL back end, "postgresql://user@host:port/db" (store_pg.c). */
extern const struct store_ops store_pg_ops;

#endif
