/* SQLite back end of the store ("sqlite:PATH").
 *
 * One connection per handle, guarded by a mutex: every call, reads included,
 * holds it for its whole duration, and a callback of a *_list function runs
 * with it held, so a callback must not call back into the same handle. Other
 * handles and other processes (the CLI next to the server) share the file
 * through WAL and the busy timeout; every write is one BEGIN IMMEDIATE
 * transaction, so writers queue instead of deadlocking on a lock upgrade.
 * Each constant statement is compiled once per handle and kept
 * (sq_stmt_acquire, sq_stmt_release), so a call only binds and steps. */
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "store/store_backends.h"

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_BUSY_RETRY_MS 10
/* Room for every constant statement of this file (about 30). */
#define SQ_STMT_CACHE_MAX 48

/* One store_issue call waiting for its commit. */
struct sq_issue_job {
    const struct store_cert *cert;
    int64_t otp_id;
    const struct store_audit *ev;
    enum kp_err rc;
    bool done;
    pthread_cond_t wake; /* its caller waits here: done, or its turn to lead */
    struct sq_issue_job *next;
};

/* A statement prepared once and kept for the connection's life. */
struct sq_cached_stmt {
    const char *sql; /* borrowed: a string literal of this file */
    sqlite3_stmt *stmt;
    bool in_use; /* between sq_stmt_acquire and sq_stmt_release */
};

struct sqlite_store {
    struct store base; /* first: struct store * converts to this */
    sqlite3 *db;
    pthread_mutex_t lock; /* one statement or transaction at a time */
    /* Prepared statements by SQL text; guarded by lock. */
    struct sq_cached_stmt cache[SQ_STMT_CACHE_MAX];
    size_t cache_n;
    bool cache_full_logged;
    /* Group commit: issues queue here; one caller at a time (the leader)
     * writes all that are queued in one transaction, so one fsync covers
     * every certificate that arrived while the previous commit ran. */
    pthread_mutex_t gc_lock;
    struct sq_issue_job *gc_head, *gc_tail; /* guarded by gc_lock */
    bool gc_leading;                        /* guarded by gc_lock */
};

/* Migration N is sq_migrations[N - 1]; append only, never edit a shipped one. */
static const char *const sq_migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE certificates("
    " serial TEXT PRIMARY KEY,"
    " label TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " sans TEXT NOT NULL DEFAULT '',"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " issued_at INTEGER NOT NULL,"
    " requester TEXT NOT NULL,"
    " auth_method TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'valid',"
    " revoked_at INTEGER NOT NULL DEFAULT 0,"
    " revocation_reason TEXT,"
    " der BLOB NOT NULL);"
    "CREATE INDEX certificates_label_issued ON certificates(label, issued_at);"
    "CREATE TABLE otps("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " hash BLOB NOT NULL UNIQUE,"
    " entity_id TEXT NOT NULL,"
    " label TEXT,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " uses_left INTEGER NOT NULL,"
    " uses_total INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE audit("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " event TEXT NOT NULL,"
    " outcome TEXT NOT NULL,"
    " label TEXT,"
    " subject TEXT,"
    " peer TEXT,"
    " detail TEXT);"
    "CREATE INDEX audit_at ON audit(at);",
    /* 2: requests held for manual approval (portable SQL: no SQLite-only types) */
    "CREATE TABLE pending_requests("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " label TEXT NOT NULL,"
    " operation TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " auth_method TEXT NOT NULL,"
    " otp_id INTEGER NOT NULL DEFAULT 0,"
    " csr_sha256 TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " csr BLOB NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'pending',"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " decided_at INTEGER NOT NULL DEFAULT 0,"
    " decided_by TEXT,"
    " serial TEXT);"
    "CREATE INDEX pending_requests_match ON pending_requests(csr_sha256, requester);"
    "CREATE INDEX pending_requests_status ON pending_requests(status, created_at);",
    /* 3: serverkeygen keys kept encrypted under a label's archive key */
    "CREATE TABLE archived_keys("
    " serial TEXT PRIMARY KEY REFERENCES certificates(serial),"
    " cms BLOB NOT NULL,"
    " created_at INTEGER NOT NULL);",
    /* 4: the subject and SANs an OTP may certify, bound at creation */
    "ALTER TABLE otps ADD COLUMN subject TEXT;"
    "ALTER TABLE otps ADD COLUMN sans TEXT;",
    /* 5: held requests matched by key, subject and SANs (a retry re-signs its
     * CSR), and what the operator is shown */
    "ALTER TABLE pending_requests ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE pending_requests ADD COLUMN sans TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE pending_requests ADD COLUMN key_type TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE pending_requests ADD COLUMN ekus TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX pending_requests_fingerprint ON pending_requests(fingerprint, requester);",
};

#define SQ_MIGRATIONS_N (sizeof(sq_migrations) / sizeof(sq_migrations[0]))

#define SQ_CERT_COLUMNS                                                                            \
    "serial, label, subject, sans, not_before, not_after, issued_at, requester, auth_method, "     \
    "status, revoked_at, der"

#define SQ_OTP_COLUMNS                                                                             \
    "id, entity_id, label, created_at, expires_at, uses_left, uses_total, revoked, subject, sans"

static struct sqlite_store *sq_store(struct store *s)
{
    return (struct sqlite_store *)s;
}

static int64_t sq_now(void)
{
    return (int64_t)time(NULL);
}

/* The one error line for a failed SQLite call; call before ROLLBACK, which
 * would replace the message. */
static void sq_log(sqlite3 *db, const char *what)
{
    const char *file = sqlite3_db_filename(db, "main");
    log_error("store: %s failed on %s: %s (sqlite code %d)", what,
              file != NULL && *file != '\0' ? file : "(memory)", sqlite3_errmsg(db),
              sqlite3_extended_errcode(db));
}

/* What a failed call means for the client: a full or read-only disk, I/O
 * errors and lock timeouts pass (503, retry later); anything else is a bug
 * or corruption (500). */
static enum kp_err sq_err(sqlite3 *db)
{
    switch (sqlite3_errcode(db)) {
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
        return KP_ERR_UNAVAILABLE;
    default:
        return KP_ERR_STORE;
    }
}

/* At a function's exit: a generic store error takes the meaning of the
 * SQLite error behind it (call before finalize or rollback). */
static enum kp_err sq_refine(sqlite3 *db, enum kp_err rc)
{
    return rc == KP_ERR_STORE ? sq_err(db) : rc;
}

/* Run constant SQL (never SQL built from input). */
static enum kp_err sq_exec(sqlite3 *db, const char *sql, const char *what)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        sq_log(db, what);
        return sq_err(db);
    }
    return KP_OK;
}

static enum kp_err sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, const char *what)
{
    sqlite3_stmt *stmt = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        sq_log(db, what);
        sqlite3_finalize(stmt);
        return sq_err(db);
    }
    *out = stmt;
    return KP_OK;
}

/* Step a statement that returns no rows. A UNIQUE or PRIMARY KEY violation is
 * KP_ERR_CONFLICT, anything else as sq_err says. */
static enum kp_err sq_step_done(sqlite3 *db, sqlite3_stmt *stmt, const char *what)
{
    int r = sqlite3_step(stmt);

    if (r == SQLITE_DONE)
        return KP_OK;
    r = sqlite3_extended_errcode(db);
    if (r == SQLITE_CONSTRAINT_PRIMARYKEY || r == SQLITE_CONSTRAINT_UNIQUE) {
        log_info("store: %s: %s", what, sqlite3_errmsg(db)); /* callers may retry */
        return KP_ERR_CONFLICT;
    }
    sq_log(db, what);
    return sq_err(db);
}

/* Prepare, bind nothing, step one row and read column 0 as an integer
 * (uncached: for the schema checks before the cache exists). */
static enum kp_err sq_query_int64(sqlite3 *db, const char *sql, int64_t *out, const char *what)
{
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    if (sq_prepare(db, sql, &stmt, what) != KP_OK)
        goto out;
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sq_log(db, what);
        goto out;
    }
    *out = sqlite3_column_int64(stmt, 0);
    rc = KP_OK;
out:
    sqlite3_finalize(stmt);
    return rc;
}

/* The cache entry for sql: the same literal first (one call site passes one
 * pointer), then the same text from another site. NULL when not cached. */
static struct sq_cached_stmt *sq_cache_find(struct sqlite_store *st, const char *sql)
{
    for (size_t i = 0; i < st->cache_n; i++)
        if (st->cache[i].sql == sql)
            return &st->cache[i];
    for (size_t i = 0; i < st->cache_n; i++)
        if (strcmp(st->cache[i].sql, sql) == 0)
            return &st->cache[i];
    return NULL;
}

/* Prepare sql into a new cache entry; a full cache logs once and leaves
 * *out NULL, so the caller prepares a statement of its own. */
static enum kp_err sq_cache_add(struct sqlite_store *st, const char *sql, sqlite3_stmt **out,
                                const char *what)
{
    struct sq_cached_stmt *e = NULL;
    sqlite3_stmt *stmt = NULL;

    *out = NULL;
    if (st->cache_n == SQ_STMT_CACHE_MAX) {
        if (!st->cache_full_logged)
            log_warn("store: statement cache full (%d): further statements are prepared on"
                     " every use",
                     SQ_STMT_CACHE_MAX);
        st->cache_full_logged = true;
        return KP_OK;
    }
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK) {
        sq_log(st->db, what);
        sqlite3_finalize(stmt);
        return sq_err(st->db);
    }
    e = &st->cache[st->cache_n++];
    e->sql = sql;
    e->stmt = stmt;
    e->in_use = true;
    *out = stmt;
    return KP_OK;
}

/* The prepared statement for sql, which must be constant SQL (never built
 * from input), with st->lock held. Every acquire is paired with
 * sq_stmt_release on every path, so no statement stays stepped: a SELECT
 * left un-reset keeps its read snapshot, which stops WAL checkpoints. The
 * same SQL acquired twice at once, or a full cache, gets a statement of its
 * own, which release finalizes. */
static enum kp_err sq_stmt_acquire(struct sqlite_store *st, const char *sql, sqlite3_stmt **out,
                                   const char *what)
{
    struct sq_cached_stmt *e = sq_cache_find(st, sql);
    sqlite3_stmt *stmt = NULL;

    if (e != NULL && !e->in_use) {
        e->in_use = true;
        *out = e->stmt;
        return KP_OK;
    }
    if (e == NULL) {
        enum kp_err rc = sq_cache_add(st, sql, &stmt, what);
        if (rc != KP_OK)
            return rc;
        if (stmt != NULL) {
            *out = stmt;
            return KP_OK;
        }
    }
    return sq_prepare(st->db, sql, out, what);
}

/* Give back a statement from sq_stmt_acquire (NULL is fine): reset, which
 * ends its read snapshot, and unbound, which drops the caller's buffers.
 * Call after sq_refine: reset sets the connection's error code again. */
static void sq_stmt_release(struct sqlite_store *st, sqlite3_stmt *stmt)
{
    if (stmt == NULL)
        return;
    for (size_t i = 0; i < st->cache_n; i++) {
        if (st->cache[i].stmt == stmt) {
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            st->cache[i].in_use = false;
            return;
        }
    }
    sqlite3_finalize(stmt); /* one of its own */
}

/* True when every cached statement is released and none on the connection
 * is left stepped: what must hold whenever st->lock is free. */
static bool sq_all_released(struct sqlite_store *st)
{
    for (size_t i = 0; i < st->cache_n; i++)
        if (st->cache[i].in_use)
            return false;
    for (sqlite3_stmt *s = sqlite3_next_stmt(st->db, NULL); s != NULL;
         s = sqlite3_next_stmt(st->db, s))
        if (sqlite3_stmt_busy(s))
            return false;
    return true;
}

static void sq_unlock(struct sqlite_store *st)
{
    assert(sq_all_released(st));
    pthread_mutex_unlock(&st->lock);
}

/* Finalize every cached statement; sqlite3_close refuses while any lives. */
static void sq_cache_clear(struct sqlite_store *st)
{
    for (size_t i = 0; i < st->cache_n; i++) {
        assert(!st->cache[i].in_use);
        sqlite3_finalize(st->cache[i].stmt);
    }
    st->cache_n = 0;
}

/* Step a cached statement that returns no rows, such as BEGIN or COMMIT. */
static enum kp_err sq_run(struct sqlite_store *st, const char *sql, const char *what)
{
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = sq_stmt_acquire(st, sql, &stmt, what);

    if (rc == KP_OK)
        rc = sq_step_done(st->db, stmt, what);
    sq_stmt_release(st, stmt);
    return rc;
}

/* Step a cached statement whose failure is left to what follows it. */
static void sq_run_quiet(struct sqlite_store *st, const char *sql)
{
    sqlite3_stmt *stmt = NULL;

    if (sq_stmt_acquire(st, sql, &stmt, sql) == KP_OK)
        sqlite3_step(stmt);
    sq_stmt_release(st, stmt);
}

static enum kp_err sq_begin(struct sqlite_store *st)
{
    return sq_run(st, "BEGIN IMMEDIATE", "begin transaction");
}

static enum kp_err sq_commit(struct sqlite_store *st)
{
    return sq_run(st, "COMMIT", "commit");
}

/* Roll back the open transaction, if SQLite has not already done so. */
static void sq_rollback(struct sqlite_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        sq_run(st, "ROLLBACK", "rollback");
}

/* Refuse early, with a clear message, when the database's directory is
 * missing: SQLite would only say "unable to open database file". */
static enum kp_err sq_check_dir(const char *path)
{
    char *dir = NULL;
    char *slash = NULL;
    char errbuf[128];
    const char *reason = NULL;
    struct stat st;
    enum kp_err rc = KP_ERR_STORE;

    dir = xstrdup(path);
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        rc = KP_OK; /* relative to the working directory, which exists */
        goto out;
    }
    if (slash == dir)
        slash[1] = '\0'; /* "/x.db": the root */
    else
        *slash = '\0';
    if (stat(dir, &st) != 0) {
        reason = strerror_r(errno, errbuf, sizeof(errbuf));
        log_error("store: cannot open database %s: directory %s: %s", path, dir, reason);
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        log_error("store: cannot open database %s: %s is not a directory", path, dir);
        goto out;
    }
    rc = KP_OK;
out:
    free(dir);
    return rc;
}

/* Switching a new file to WAL needs an exclusive lock, and SQLite answers
 * SQLITE_BUSY at once, without the busy handler, while another connection
 * holds any lock (two first opens of one file); so retry, within the same
 * time budget as the busy timeout. */
static enum kp_err sq_journal_wal(sqlite3 *db, const char *path)
{
    sqlite3_stmt *stmt = NULL;
    const unsigned char *mode = NULL; /* borrowed from stmt */
    enum kp_err rc = KP_ERR_STORE;
    int waited = 0;
    int r;

    if (sq_prepare(db, "PRAGMA journal_mode=WAL", &stmt, "journal_mode=WAL") != KP_OK)
        goto out;
    for (;;) {
        r = sqlite3_step(stmt);
        if ((r & 0xff) != SQLITE_BUSY || waited >= SQ_BUSY_TIMEOUT_MS)
            break;
        sqlite3_reset(stmt);
        sqlite3_sleep(SQ_BUSY_RETRY_MS);
        waited += SQ_BUSY_RETRY_MS;
    }
    if (r != SQLITE_ROW) {
        sq_log(db, "journal_mode=WAL");
        goto out;
    }
    mode = sqlite3_column_text(stmt, 0);
    if (mode == NULL || strcmp((const char *)mode, "wal") != 0)
        log_warn("store: %s: journal mode is %s, not wal", path,
                 mode != NULL ? (const char *)mode : "unknown");
    rc = KP_OK;
out:
    sqlite3_finalize(stmt);
    return rc;
}

/* Per-connection settings: WAL so readers and the CLI do not block the
 * server, FULL sync so a committed certificate survives power loss. */
static enum kp_err sq_configure(sqlite3 *db, const char *path)
{
    if (sqlite3_busy_timeout(db, SQ_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        sq_log(db, "busy timeout");
        return KP_ERR_STORE;
    }
    if (sq_journal_wal(db, path) != KP_OK)
        return KP_ERR_STORE;
    if (sq_exec(db, "PRAGMA synchronous=FULL", "synchronous=FULL") != KP_OK)
        return KP_ERR_STORE;
    if (sq_exec(db, "PRAGMA foreign_keys=ON", "foreign_keys=ON") != KP_OK)
        return KP_ERR_STORE;
    return KP_OK;
}

/* The highest applied migration, 0 for a new database. Read-only. */
static enum kp_err sq_schema_version(sqlite3 *db, int64_t *out)
{
    int64_t has_table = 0;
    int64_t version = 0;

    if (sq_query_int64(db,
                       "SELECT count(*) FROM sqlite_master"
                       " WHERE type = 'table' AND name = 'schema_migrations'",
                       &has_table, "read schema version") != KP_OK)
        return KP_ERR_STORE;
    if (has_table) {
        if (sq_query_int64(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", &version,
                           "read schema version") != KP_OK)
            return KP_ERR_STORE;
    }
    *out = version;
    return KP_OK;
}

/* Apply one migration in its own transaction, unless another connection
 * applied it since we looked. */
static enum kp_err sq_migration_apply(sqlite3 *db, const char *path, int64_t version,
                                      const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;
    int r;

    if (sq_exec(db, "BEGIN IMMEDIATE", "begin transaction") != KP_OK)
        goto out;
    if (sq_exec(db,
                "CREATE TABLE IF NOT EXISTS schema_migrations("
                "version INTEGER PRIMARY KEY, applied_at INTEGER)",
                "create schema_migrations") != KP_OK)
        goto out;
    if (sq_prepare(db, "SELECT 1 FROM schema_migrations WHERE version = ?1", &stmt,
                   "read schema version") != KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 1, version) != SQLITE_OK) {
        sq_log(db, "read schema version");
        goto out;
    }
    r = sqlite3_step(stmt);
    if (r == SQLITE_ROW) {
        rc = KP_OK; /* another process was first; ROLLBACK at out: is harmless */
        goto out;
    }
    if (r != SQLITE_DONE) {
        sq_log(db, "read schema version");
        goto out;
    }
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (sq_exec(db, sql, "schema migration") != KP_OK)
        goto out;
    if (sq_prepare(db, "INSERT INTO schema_migrations(version, applied_at) VALUES(?1, ?2)", &stmt,
                   "record schema migration") != KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 1, version) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, sq_now()) != SQLITE_OK) {
        sq_log(db, "record schema migration");
        goto out;
    }
    if (sq_step_done(db, stmt, "record schema migration") != KP_OK)
        goto out;
    if (sq_exec(db, "COMMIT", "commit") != KP_OK)
        goto out;
    log_info("store: %s: applied schema migration %lld", path, (long long)version);
    rc = KP_OK;
out:
    sqlite3_finalize(stmt);
    if (!sqlite3_get_autocommit(db))
        sq_exec(db, "ROLLBACK", "rollback");
    return rc;
}

static enum kp_err sq_migrate(sqlite3 *db, const char *path)
{
    int64_t current = 0;

    if (sq_schema_version(db, &current) != KP_OK)
        return KP_ERR_STORE;
    if (current > (int64_t)SQ_MIGRATIONS_N) {
        log_error("store: %s: schema version %lld is newer than this kipuka (%zu)", path,
                  (long long)current, SQ_MIGRATIONS_N);
        return KP_ERR_STORE;
    }
    for (size_t i = (size_t)current; i < SQ_MIGRATIONS_N; i++) {
        if (sq_migration_apply(db, path, (int64_t)i + 1, sq_migrations[i]) != KP_OK)
            return KP_ERR_STORE;
    }
    return KP_OK;
}

static enum kp_err sq_open(const char *location, const struct store_opts *opts, struct store **out)
{
    struct sqlite_store *st = NULL;
    sqlite3 *db = NULL;
    enum kp_err rc = KP_ERR_STORE;
    int r;

    (void)opts; /* one connection: there is no pool to size */
    if (location == NULL || *location == '\0') {
        log_error("store: sqlite: URL has no database path");
        goto out;
    }
    if (sq_check_dir(location) != KP_OK)
        goto out;
    /* Our mutex serialises use of the connection, so SQLite's is not needed. */
    r = sqlite3_open_v2(location, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (r != SQLITE_OK) {
        log_error("store: cannot open database %s: %s", location,
                  db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(r));
        goto out;
    }
    sqlite3_extended_result_codes(db, 1);
    if (sq_configure(db, location) != KP_OK)
        goto out;
    if (sq_migrate(db, location) != KP_OK)
        goto out;
    st = xcalloc(1, sizeof(*st));
    st->base.ops = &store_sqlite_ops;
    st->db = db;
    db = NULL; /* steal */
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->gc_lock, NULL);
    *out = &st->base;
    rc = KP_OK;
out:
    sqlite3_close(db);
    return rc;
}

static void sq_close(struct store *s)
{
    struct sqlite_store *st = sq_store(s);

    sq_cache_clear(st);
    if (sqlite3_close(st->db) != SQLITE_OK)
        sq_log(st->db, "close"); /* a statement left unfinalized: a bug here */
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->gc_lock);
    free(st);
}

/* Insert one audit row at the current time; nothing when ev is NULL. */
static enum kp_err sq_audit_insert(struct sqlite_store *st, const struct store_audit *ev)
{
    sqlite3 *db = st->db;
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    if (ev == NULL)
        return KP_OK;
    if (sq_stmt_acquire(st,
                        "INSERT INTO audit(at, event, outcome, label, subject, peer, detail)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        &stmt, "insert audit event") != KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 1, sq_now()) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 2, ev->event, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 3, ev->outcome, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 4, ev->label, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 5, ev->subject, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 6, ev->peer, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 7, ev->detail, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(db, "insert audit event");
        goto out;
    }
    rc = sq_step_done(db, stmt, "insert audit event");
out:
    rc = sq_refine(db, rc);
    sq_stmt_release(st, stmt);
    return rc;
}

/* Take one use of an OTP that is still usable now; KP_ERR_UNAUTHORIZED when
 * it is used up, expired, revoked or gone. */
static enum kp_err sq_otp_consume(struct sqlite_store *st, int64_t otp_id)
{
    sqlite3 *db = st->db;
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    if (sq_stmt_acquire(st,
                        "UPDATE otps SET uses_left = uses_left - 1"
                        " WHERE id = ?1 AND uses_left > 0 AND revoked = 0 AND expires_at > ?2",
                        &stmt, "consume OTP") != KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 1, otp_id) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, sq_now()) != SQLITE_OK) {
        sq_log(db, "consume OTP");
        goto out;
    }
    if (sq_step_done(db, stmt, "consume OTP") != KP_OK)
        goto out;
    if (sqlite3_changes(db) == 0) {
        log_info("store: OTP %lld is used up, expired or revoked", (long long)otp_id);
        rc = KP_ERR_UNAUTHORIZED;
        goto out;
    }
    rc = KP_OK;
out:
    sq_stmt_release(st, stmt);
    return rc;
}

static enum kp_err sq_cert_insert(struct sqlite_store *st, const struct store_cert *c)
{
    sqlite3 *db = st->db;
    const char *sans = c->sans != NULL ? c->sans : "";            /* column default */
    const char *status = c->status != NULL ? c->status : "valid"; /* column default */
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    if (sq_stmt_acquire(st,
                        "INSERT INTO certificates(" SQ_CERT_COLUMNS ")"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                        &stmt, "insert certificate") != KP_OK)
        goto out;
    if (sqlite3_bind_text(stmt, 1, c->serial, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 2, c->label, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 3, c->subject, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 4, sans, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 5, c->not_before) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 6, c->not_after) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 7, c->issued_at) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 8, c->requester, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 9, c->auth_method, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 10, status, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 11, c->revoked_at) != SQLITE_OK ||
        sqlite3_bind_blob64(stmt, 12, c->der, c->der_len, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(db, "insert certificate");
        goto out;
    }
    rc = sq_step_done(db, stmt, "insert certificate");
    if (rc != KP_OK || c->archived_key == NULL)
        goto out;
    sq_stmt_release(st, stmt);
    stmt = NULL;
    rc = KP_ERR_STORE;
    if (sq_stmt_acquire(st, "INSERT INTO archived_keys(serial, cms, created_at) VALUES(?1, ?2, ?3)",
                        &stmt, "archive key") != KP_OK)
        goto out;
    if (sqlite3_bind_text(stmt, 1, c->serial, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob64(stmt, 2, c->archived_key, c->archived_key_len, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(stmt, 3, sq_now()) != SQLITE_OK) {
        sq_log(db, "archive key");
        goto out;
    }
    rc = sq_step_done(db, stmt, "archive key");
out:
    sq_stmt_release(st, stmt);
    return rc;
}

/* One issue inside the batch's transaction, undone alone on failure. */
static enum kp_err sq_issue_one(struct sqlite_store *st, const struct sq_issue_job *job)
{
    sqlite3 *db = st->db;
    enum kp_err rc = sq_run(st, "SAVEPOINT issue", "savepoint");

    if (rc == KP_OK && job->otp_id > 0)
        rc = sq_otp_consume(st, job->otp_id);
    if (rc == KP_OK)
        rc = sq_cert_insert(st, job->cert);
    if (rc == KP_OK)
        rc = sq_audit_insert(st, job->ev);
    rc = sq_refine(db, rc);
    if (rc != KP_OK && !sqlite3_get_autocommit(db))
        sq_run_quiet(st, "ROLLBACK TO issue");
    if (!sqlite3_get_autocommit(db) && sq_run(st, "RELEASE issue", "release") != KP_OK &&
        rc == KP_OK)
        rc = KP_ERR_STORE;
    return rc;
}

/* Write a batch in one transaction. A job that fails alone (serial taken,
 * OTP used up) is rolled back alone; a failure of the transaction itself
 * (disk full, I/O error, failed COMMIT) fails every job: nothing is kept. */
static void sq_issue_batch(struct sqlite_store *st, struct sq_issue_job *batch)
{
    enum kp_err rc;

    pthread_mutex_lock(&st->lock);
    rc = sq_refine(st->db, sq_begin(st));
    for (struct sq_issue_job *j = batch; j != NULL; j = j->next) {
        if (rc != KP_OK) {
            j->rc = rc;
            continue;
        }
        j->rc = sq_issue_one(st, j);
        if (sqlite3_get_autocommit(st->db)) {
            /* SQLite ended the transaction (disk full, I/O): all of it is gone */
            rc = j->rc != KP_OK ? j->rc : KP_ERR_STORE;
            for (struct sq_issue_job *k = batch; k != j->next; k = k->next)
                k->rc = rc;
        }
    }
    if (rc == KP_OK) {
        rc = sq_refine(st->db, sq_commit(st));
        if (rc != KP_OK)
            for (struct sq_issue_job *j = batch; j != NULL; j = j->next)
                j->rc = rc;
    }
    sq_rollback(st); /* no-op after a successful COMMIT */
    sq_unlock(st);
}

static enum kp_err sq_issue(struct store *s, const struct store_cert *c, int64_t otp_id,
                            const struct store_audit *ev)
{
    struct sqlite_store *st = sq_store(s);
    struct sq_issue_job job = {.cert = c, .otp_id = otp_id, .ev = ev, .rc = KP_ERR_STORE};

    pthread_cond_init(&job.wake, NULL);
    pthread_mutex_lock(&st->gc_lock);
    if (st->gc_tail != NULL)
        st->gc_tail->next = &job;
    else
        st->gc_head = &job;
    st->gc_tail = &job;
    while (!job.done) {
        struct sq_issue_job *batch;

        if (st->gc_leading) {
            pthread_cond_wait(&job.wake, &st->gc_lock);
            continue;
        }
        st->gc_leading = true;
        batch = st->gc_head;
        st->gc_head = st->gc_tail = NULL;
        pthread_mutex_unlock(&st->gc_lock);
        sq_issue_batch(st, batch);
        pthread_mutex_lock(&st->gc_lock);
        /* Wake each caller of the batch, and the first of the next one to
         * lead it: one wake-up per waiter, not all of them at every commit
         * (on one core, each is a context switch). */
        for (struct sq_issue_job *j = batch, *next; j != NULL; j = next) {
            next = j->next; /* j belongs to its caller once done */
            j->done = true;
            pthread_cond_signal(&j->wake);
        }
        st->gc_leading = false;
        if (st->gc_head != NULL)
            pthread_cond_signal(&st->gc_head->wake);
    }
    pthread_mutex_unlock(&st->gc_lock);
    pthread_cond_destroy(&job.wake);
    return job.rc;
}

static char *sq_column_strdup(sqlite3_stmt *stmt, int col)
{
    const unsigned char *v = sqlite3_column_text(stmt, col);

    return v != NULL ? xstrdup((const char *)v) : NULL;
}

/* A new store_cert from a row of SQ_CERT_COLUMNS. */
static struct store_cert *sq_cert_from_row(sqlite3_stmt *stmt)
{
    struct store_cert *c = xcalloc(1, sizeof(*c));
    const void *der = NULL;
    int der_len;

    c->serial = sq_column_strdup(stmt, 0);
    c->label = sq_column_strdup(stmt, 1);
    c->subject = sq_column_strdup(stmt, 2);
    c->sans = sq_column_strdup(stmt, 3);
    c->not_before = sqlite3_column_int64(stmt, 4);
    c->not_after = sqlite3_column_int64(stmt, 5);
    c->issued_at = sqlite3_column_int64(stmt, 6);
    c->requester = sq_column_strdup(stmt, 7);
    c->auth_method = sq_column_strdup(stmt, 8);
    c->status = sq_column_strdup(stmt, 9);
    c->revoked_at = sqlite3_column_int64(stmt, 10);
    der = sqlite3_column_blob(stmt, 11);
    der_len = sqlite3_column_bytes(stmt, 11);
    c->der_len = der_len > 0 ? (size_t)der_len : 0;
    c->der = xmalloc(c->der_len);
    if (c->der_len > 0)
        memcpy(c->der, der, c->der_len);
    return c;
}

static enum kp_err sq_cert_get(struct store *s, const char *serial, struct store_cert **out)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;
    int r;

    pthread_mutex_lock(&st->lock);
    if (sq_stmt_acquire(st, "SELECT " SQ_CERT_COLUMNS " FROM certificates WHERE serial = ?1", &stmt,
                        "read certificate") != KP_OK)
        goto out;
    if (sqlite3_bind_text(stmt, 1, serial, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(st->db, "read certificate");
        goto out;
    }
    r = sqlite3_step(stmt);
    if (r == SQLITE_DONE) {
        rc = KP_ERR_NOT_FOUND;
        goto out;
    }
    if (r != SQLITE_ROW) {
        sq_log(st->db, "read certificate");
        goto out;
    }
    *out = sq_cert_from_row(stmt);
    rc = KP_OK;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_cert_list(struct store *s, const char *label, store_cert_cb cb, void *arg)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    /* ?1 IS NULL: one statement for "all labels" and "this label". */
    if (sq_stmt_acquire(st,
                        "SELECT " SQ_CERT_COLUMNS " FROM certificates"
                        " WHERE ?1 IS NULL OR label = ?1 ORDER BY issued_at DESC, rowid DESC",
                        &stmt, "list certificates") != KP_OK)
        goto out;
    if (sqlite3_bind_text(stmt, 1, label, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(st->db, "list certificates");
        goto out;
    }
    for (;;) {
        struct store_cert *c = NULL;
        int r = sqlite3_step(stmt);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            sq_log(st->db, "list certificates");
            goto out;
        }
        c = sq_cert_from_row(stmt);
        cb(c, arg);
        store_cert_free(c);
    }
    rc = KP_OK;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_cert_count(struct store *s, int64_t *out)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    if (sq_stmt_acquire(st, "SELECT count(*) FROM certificates", &stmt, "count certificates") !=
        KP_OK)
        goto out;
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sq_log(st->db, "count certificates");
        goto out;
    }
    *out = sqlite3_column_int64(stmt, 0);
    rc = KP_OK;
out:
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_otp_insert(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                                 const struct store_otp *o, int64_t *id_out)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    struct store_audit ev;
    char *detail = NULL;
    enum kp_err rc = KP_ERR_STORE;
    int64_t id;

    pthread_mutex_lock(&st->lock);
    if (sq_begin(st) != KP_OK)
        goto out;
    if (sq_stmt_acquire(
            st,
            "INSERT INTO otps(hash, entity_id, label, created_at, expires_at, uses_left,"
            " uses_total, revoked, subject, sans)"
            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            &stmt, "insert OTP") != KP_OK)
        goto out;
    if (sqlite3_bind_blob(stmt, 1, hash, STORE_OTP_HASH_LEN, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 2, o->entity_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 3, o->label, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 4, o->created_at) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 5, o->expires_at) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 6, o->uses_left) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 7, o->uses_total) != SQLITE_OK ||
        sqlite3_bind_int(stmt, 8, o->revoked ? 1 : 0) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 9, o->subject, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 10, o->sans, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(st->db, "insert OTP");
        goto out;
    }
    rc = sq_step_done(st->db, stmt, "insert OTP");
    if (rc != KP_OK)
        goto out;
    id = sqlite3_last_insert_rowid(st->db);
    /* store.h passes no event here: the create event is built from the row. */
    detail = xasprintf("id=%lld", (long long)id);
    ev.event = "otp.create";
    ev.outcome = "ok";
    ev.label = o->label;       /* borrowed */
    ev.subject = o->entity_id; /* borrowed */
    ev.peer = NULL;
    ev.detail = detail;
    rc = sq_audit_insert(st, &ev);
    if (rc != KP_OK)
        goto out;
    rc = sq_commit(st);
    if (rc != KP_OK)
        goto out;
    *id_out = id;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_rollback(st);
    sq_unlock(st);
    free(detail);
    return rc;
}

/* A new store_otp from a row of SQ_OTP_COLUMNS. */
static struct store_otp *sq_otp_from_row(sqlite3_stmt *stmt)
{
    struct store_otp *o = xcalloc(1, sizeof(*o));

    o->id = sqlite3_column_int64(stmt, 0);
    o->entity_id = sq_column_strdup(stmt, 1);
    o->label = sq_column_strdup(stmt, 2);
    o->created_at = sqlite3_column_int64(stmt, 3);
    o->expires_at = sqlite3_column_int64(stmt, 4);
    o->uses_left = sqlite3_column_int64(stmt, 5);
    o->uses_total = sqlite3_column_int64(stmt, 6);
    o->revoked = sqlite3_column_int64(stmt, 7) != 0;
    o->subject = sq_column_strdup(stmt, 8);
    o->sans = sq_column_strdup(stmt, 9);
    return o;
}

static enum kp_err sq_otp_find(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                               struct store_otp **out)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;
    int r;

    pthread_mutex_lock(&st->lock);
    if (sq_stmt_acquire(st, "SELECT " SQ_OTP_COLUMNS " FROM otps WHERE hash = ?1", &stmt,
                        "find OTP") != KP_OK)
        goto out;
    if (sqlite3_bind_blob(stmt, 1, hash, STORE_OTP_HASH_LEN, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(st->db, "find OTP");
        goto out;
    }
    r = sqlite3_step(stmt);
    if (r == SQLITE_DONE) {
        rc = KP_ERR_NOT_FOUND;
        goto out;
    }
    if (r != SQLITE_ROW) {
        sq_log(st->db, "find OTP");
        goto out;
    }
    *out = sq_otp_from_row(stmt);
    rc = KP_OK;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_otp_list(struct store *s, store_otp_cb cb, void *arg)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    if (sq_stmt_acquire(st, "SELECT " SQ_OTP_COLUMNS " FROM otps ORDER BY id", &stmt,
                        "list OTPs") != KP_OK)
        goto out;
    for (;;) {
        struct store_otp *o = NULL;
        int r = sqlite3_step(stmt);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            sq_log(st->db, "list OTPs");
            goto out;
        }
        o = sq_otp_from_row(stmt);
        cb(o, arg);
        store_otp_free(o);
    }
    rc = KP_OK;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

/* The end of a conditional UPDATE inside a transaction: step it,
 * KP_ERR_NOT_FOUND when it matched no row, else insert cert (when given) and
 * the audit event, and commit. The caller rolls back on failure. */
static enum kp_err sq_change_audited(struct sqlite_store *st, sqlite3_stmt *stmt, const char *what,
                                     const struct store_cert *cert, const struct store_audit *ev)
{
    sqlite3 *db = st->db;
    enum kp_err rc = sq_step_done(db, stmt, what);

    if (rc != KP_OK)
        return rc;
    if (sqlite3_changes(db) == 0)
        return KP_ERR_NOT_FOUND;
    if (cert != NULL) {
        rc = sq_cert_insert(st, cert);
        if (rc != KP_OK)
            return rc;
    }
    rc = sq_audit_insert(st, ev);
    return rc == KP_OK ? sq_commit(st) : rc;
}

static enum kp_err sq_otp_revoke(struct store *s, int64_t id, const struct store_audit *ev)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    if (sq_begin(st) != KP_OK)
        goto out;
    if (sq_stmt_acquire(st, "UPDATE otps SET revoked = 1 WHERE id = ?1", &stmt, "revoke OTP") !=
        KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 1, id) != SQLITE_OK) {
        sq_log(st->db, "revoke OTP");
        goto out;
    }
    rc = sq_change_audited(st, stmt, "revoke OTP", NULL, ev);
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_rollback(st);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_audit_add(struct store *s, const struct store_audit *ev)
{
    struct sqlite_store *st = sq_store(s);
    enum kp_err rc;

    pthread_mutex_lock(&st->lock);
    rc = sq_audit_insert(st, ev); /* one statement: its own transaction */
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_audit_list(struct store *s, int64_t since, store_audit_cb cb, void *arg)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    if (sq_stmt_acquire(st,
                        "SELECT at, event, outcome, label, subject, peer, detail FROM audit"
                        " WHERE at >= ?1 ORDER BY at, id",
                        &stmt, "list audit events") != KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 1, since) != SQLITE_OK) {
        sq_log(st->db, "list audit events");
        goto out;
    }
    for (;;) {
        struct store_audit ev;
        int r = sqlite3_step(stmt);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            sq_log(st->db, "list audit events");
            goto out;
        }
        /* borrowed: valid until the next step */
        ev.event = (const char *)sqlite3_column_text(stmt, 1);
        ev.outcome = (const char *)sqlite3_column_text(stmt, 2);
        ev.label = (const char *)sqlite3_column_text(stmt, 3);
        ev.subject = (const char *)sqlite3_column_text(stmt, 4);
        ev.peer = (const char *)sqlite3_column_text(stmt, 5);
        ev.detail = (const char *)sqlite3_column_text(stmt, 6);
        cb(sqlite3_column_int64(stmt, 0), &ev, arg);
    }
    rc = KP_OK;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

#define SQ_PENDING_COLUMNS                                                                         \
    "id, label, operation, requester, auth_method, otp_id, csr_sha256, subject, csr, status, "     \
    "created_at, expires_at, decided_at, decided_by, serial, fingerprint, sans, key_type, ekus"

static struct store_pending *sq_pending_from_row(sqlite3_stmt *stmt)
{
    struct store_pending *p = xcalloc(1, sizeof(*p));
    const void *csr;
    int n;

    p->id = sqlite3_column_int64(stmt, 0);
    p->label = sq_column_strdup(stmt, 1);
    p->operation = sq_column_strdup(stmt, 2);
    p->requester = sq_column_strdup(stmt, 3);
    p->auth_method = sq_column_strdup(stmt, 4);
    p->otp_id = sqlite3_column_int64(stmt, 5);
    p->csr_sha256 = sq_column_strdup(stmt, 6);
    p->subject = sq_column_strdup(stmt, 7);
    csr = sqlite3_column_blob(stmt, 8);
    n = sqlite3_column_bytes(stmt, 8);
    p->csr_len = n > 0 ? (size_t)n : 0;
    p->csr = xmalloc(p->csr_len + 1);
    if (p->csr_len > 0)
        memcpy(p->csr, csr, p->csr_len);
    p->status = sq_column_strdup(stmt, 9);
    p->created_at = sqlite3_column_int64(stmt, 10);
    p->expires_at = sqlite3_column_int64(stmt, 11);
    p->decided_at = sqlite3_column_int64(stmt, 12);
    p->decided_by = sq_column_strdup(stmt, 13);
    p->serial = sq_column_strdup(stmt, 14);
    p->fingerprint = sq_column_strdup(stmt, 15);
    p->sans = sq_column_strdup(stmt, 16);
    p->key_type = sq_column_strdup(stmt, 17);
    p->ekus = sq_column_strdup(stmt, 18);
    return p;
}

static enum kp_err sq_pending_put(struct store *s, const struct store_pending *p,
                                  const struct store_audit *ev, int64_t *id_out)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;
    int64_t id;

    pthread_mutex_lock(&st->lock);
    if (sq_begin(st) != KP_OK)
        goto out;
    if (p->otp_id > 0) {
        rc = sq_otp_consume(st, p->otp_id);
        if (rc != KP_OK)
            goto out;
        rc = KP_ERR_STORE;
    }
    if (sq_stmt_acquire(
            st,
            "INSERT INTO pending_requests(label, operation, requester, auth_method, otp_id,"
            " csr_sha256, subject, csr, status, created_at, expires_at, fingerprint, sans,"
            " key_type, ekus)"
            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?11, ?12, ?13, ?14)",
            &stmt, "insert pending request") != KP_OK)
        goto out;
    if (sqlite3_bind_text(stmt, 1, p->label, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 2, p->operation, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 3, p->requester, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 4, p->auth_method, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 5, p->otp_id) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 6, p->csr_sha256, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 7, p->subject, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob64(stmt, 8, p->csr, p->csr_len, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 9, p->created_at) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 10, p->expires_at) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 11, p->fingerprint, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 12, p->sans, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 13, p->key_type, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 14, p->ekus, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(st->db, "insert pending request");
        goto out;
    }
    rc = sq_step_done(st->db, stmt, "insert pending request");
    if (rc != KP_OK)
        goto out;
    id = sqlite3_last_insert_rowid(st->db);
    rc = sq_audit_insert(st, ev);
    if (rc != KP_OK)
        goto out;
    rc = sq_commit(st);
    if (rc != KP_OK)
        goto out;
    *id_out = id;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_rollback(st);
    sq_unlock(st);
    return rc;
}

/* Step stmt for at most one row of SQ_PENDING_COLUMNS; KP_ERR_NOT_FOUND when none. */
static enum kp_err sq_pending_one(sqlite3 *db, sqlite3_stmt *stmt, struct store_pending **out,
                                  const char *what)
{
    int r = sqlite3_step(stmt);

    if (r == SQLITE_DONE)
        return KP_ERR_NOT_FOUND;
    if (r != SQLITE_ROW) {
        sq_log(db, what);
        return KP_ERR_STORE;
    }
    *out = sq_pending_from_row(stmt);
    return KP_OK;
}

static enum kp_err sq_pending_find(struct store *s, const char *label, const char *operation,
                                   const char *requester, const char *fingerprint,
                                   const char *csr_sha256, int64_t now, struct store_pending **out)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    /* rows held before migration 4 have no fingerprint: their exact bytes */
    if (sq_stmt_acquire(st,
                        "SELECT " SQ_PENDING_COLUMNS " FROM pending_requests"
                        " WHERE ((fingerprint = ?1 AND fingerprint <> '')"
                        " OR (fingerprint = '' AND csr_sha256 = ?6))"
                        " AND requester = ?2 AND label = ?3 AND operation = ?4"
                        " AND status IN ('pending', 'approved', 'rejected') AND expires_at > ?5"
                        " ORDER BY id DESC LIMIT 1",
                        &stmt, "find pending request") != KP_OK)
        goto out;
    if (sqlite3_bind_text(stmt, 1, fingerprint, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 6, csr_sha256, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 2, requester, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 3, label, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 4, operation, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 5, now) != SQLITE_OK) {
        sq_log(st->db, "find pending request");
        goto out;
    }
    rc = sq_pending_one(st->db, stmt, out, "find pending request");
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_pending_get(struct store *s, int64_t id, struct store_pending **out)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    if (sq_stmt_acquire(st, "SELECT " SQ_PENDING_COLUMNS " FROM pending_requests WHERE id = ?1",
                        &stmt, "read pending request") != KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 1, id) != SQLITE_OK) {
        sq_log(st->db, "read pending request");
        goto out;
    }
    rc = sq_pending_one(st->db, stmt, out, "read pending request");
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_pending_list(struct store *s, const char *status, int64_t now,
                                   store_pending_cb cb, void *arg)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    /* "expired" is not stored: it is a live status whose time has passed. */
    if (sq_stmt_acquire(
            st,
            "SELECT " SQ_PENDING_COLUMNS " FROM pending_requests WHERE ?1 IS NULL"
            " OR (?1 = 'expired' AND status IN ('pending', 'approved') AND expires_at <= ?2)"
            " OR (?1 IN ('pending', 'approved') AND status = ?1 AND expires_at > ?2)"
            " OR (?1 NOT IN ('expired', 'pending', 'approved') AND status = ?1)"
            " ORDER BY id",
            &stmt, "list pending requests") != KP_OK)
        goto out;
    if (sqlite3_bind_text(stmt, 1, status, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, now) != SQLITE_OK) {
        sq_log(st->db, "list pending requests");
        goto out;
    }
    for (;;) {
        struct store_pending *p = NULL;
        rc = sq_pending_one(st->db, stmt, &p, "list pending requests");
        if (rc == KP_ERR_NOT_FOUND)
            break;
        if (rc != KP_OK)
            goto out;
        cb(p, arg);
        store_pending_free(p);
    }
    rc = KP_OK;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_pending_decide(struct store *s, int64_t id, const char *status,
                                     const char *decided_by, int64_t now,
                                     const struct store_audit *ev)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    if (sq_begin(st) != KP_OK)
        goto out;
    if (sq_stmt_acquire(st,
                        "UPDATE pending_requests SET status = ?2, decided_at = ?3, decided_by = ?4"
                        " WHERE id = ?1 AND status = 'pending' AND expires_at > ?3",
                        &stmt, "decide pending request") != KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 2, status, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 3, now) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 4, decided_by, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(st->db, "decide pending request");
        goto out;
    }
    rc = sq_change_audited(st, stmt, "decide pending request", NULL, ev);
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_rollback(st);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_pending_issue(struct store *s, int64_t id, const struct store_cert *c,
                                    const struct store_audit *ev)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    if (sq_begin(st) != KP_OK)
        goto out;
    if (sq_stmt_acquire(st,
                        "UPDATE pending_requests SET status = 'issued', serial = ?2"
                        " WHERE id = ?1 AND status = 'approved'",
                        &stmt, "mark pending request issued") != KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 2, c->serial, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(st->db, "mark pending request issued");
        goto out;
    }
    rc = sq_change_audited(st, stmt, "mark pending request issued", c, ev);
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_rollback(st);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_key_archive_get(struct store *s, const char *serial, unsigned char **der,
                                      size_t *len)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;
    int r, n;

    pthread_mutex_lock(&st->lock);
    if (sq_stmt_acquire(st, "SELECT cms FROM archived_keys WHERE serial = ?1", &stmt,
                        "read archived key") != KP_OK)
        goto out;
    if (sqlite3_bind_text(stmt, 1, serial, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(st->db, "read archived key");
        goto out;
    }
    r = sqlite3_step(stmt);
    if (r == SQLITE_DONE) {
        rc = KP_ERR_NOT_FOUND;
        goto out;
    }
    if (r != SQLITE_ROW) {
        sq_log(st->db, "read archived key");
        goto out;
    }
    n = sqlite3_column_bytes(stmt, 0);
    *len = n > 0 ? (size_t)n : 0;
    *der = xmalloc(*len + 1);
    if (*len > 0)
        memcpy(*der, sqlite3_column_blob(stmt, 0), *len);
    rc = KP_OK;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

/* ?n IS NULL: one statement whatever filters are set. */
#define SQ_CERT_FILTER                                                                             \
    " WHERE (?1 IS NULL OR label = ?1) AND (?2 IS NULL OR status = ?2)"                            \
    " AND (?3 IS NULL OR instr(subject, ?3) > 0)"

static enum kp_err sq_bind_query(sqlite3 *db, sqlite3_stmt *stmt, const struct store_cert_query *q)
{
    if (sqlite3_bind_text(stmt, 1, q->label, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 2, q->status, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 3, q->subject, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(db, "query certificates");
        return KP_ERR_STORE;
    }
    return KP_OK;
}

static enum kp_err sq_cert_query(struct store *s, const struct store_cert_query *q,
                                 store_cert_cb cb, void *arg, int64_t *total)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    if (sq_stmt_acquire(st, "SELECT count(*) FROM certificates" SQ_CERT_FILTER, &stmt,
                        "count certificates") != KP_OK ||
        sq_bind_query(st->db, stmt, q) != KP_OK)
        goto out;
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sq_log(st->db, "count certificates");
        goto out;
    }
    *total = sqlite3_column_int64(stmt, 0);
    sq_stmt_release(st, stmt);
    stmt = NULL;
    if (sq_stmt_acquire(st,
                        "SELECT " SQ_CERT_COLUMNS " FROM certificates" SQ_CERT_FILTER
                        " ORDER BY issued_at DESC, rowid DESC LIMIT ?4 OFFSET ?5",
                        &stmt, "query certificates") != KP_OK ||
        sq_bind_query(st->db, stmt, q) != KP_OK)
        goto out;
    if (sqlite3_bind_int64(stmt, 4, q->limit > 0 ? q->limit : -1) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 5, q->offset > 0 ? q->offset : 0) != SQLITE_OK) {
        sq_log(st->db, "query certificates");
        goto out;
    }
    for (;;) {
        struct store_cert *c;
        int r = sqlite3_step(stmt);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            sq_log(st->db, "query certificates");
            goto out;
        }
        c = sq_cert_from_row(stmt);
        cb(c, arg);
        store_cert_free(c);
    }
    rc = KP_OK;
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_cert_revoke(struct store *s, const char *serial, const char *reason,
                                  int64_t at, const struct store_audit *ev)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;

    pthread_mutex_lock(&st->lock);
    if (sq_begin(st) != KP_OK)
        goto out;
    if (sq_stmt_acquire(st,
                        "UPDATE certificates SET status = 'revoked', revoked_at = ?2,"
                        " revocation_reason = ?3 WHERE serial = ?1 AND status = 'valid'",
                        &stmt, "revoke certificate") != KP_OK)
        goto out;
    if (sqlite3_bind_text(stmt, 1, serial, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, at) != SQLITE_OK ||
        sqlite3_bind_text(stmt, 3, reason, -1, SQLITE_STATIC) != SQLITE_OK) {
        sq_log(st->db, "revoke certificate");
        goto out;
    }
    rc = sq_change_audited(st, stmt, "revoke certificate", NULL, ev);
    if (rc == KP_ERR_NOT_FOUND) {
        /* no valid row: none at all, or one already revoked */
        int64_t n = 0;
        sq_stmt_release(st, stmt);
        stmt = NULL;
        rc = KP_ERR_STORE;
        if (sq_stmt_acquire(st, "SELECT count(*) FROM certificates WHERE serial = ?1", &stmt,
                            "find certificate") != KP_OK ||
            sqlite3_bind_text(stmt, 1, serial, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(stmt) != SQLITE_ROW)
            goto out;
        n = sqlite3_column_int64(stmt, 0);
        rc = n == 0 ? KP_ERR_NOT_FOUND : KP_ERR_CONFLICT;
    }
out:
    rc = sq_refine(st->db, rc);
    sq_stmt_release(st, stmt);
    sq_rollback(st); /* no-op after a successful COMMIT */
    sq_unlock(st);
    return rc;
}

static enum kp_err sq_revoked_list(struct store *s, const char *const *labels, size_t n,
                                   store_revoked_cb cb, void *arg)
{
    struct sqlite_store *st = sq_store(s);
    sqlite3_stmt *stmt = NULL;
    enum kp_err rc = KP_ERR_STORE;
    static const char head[] = "SELECT serial, revoked_at, revocation_reason FROM certificates"
                               " WHERE status = 'revoked' AND label IN (?",
                      tail[] = ") ORDER BY revoked_at, rowid";
    char *sql = NULL;
    size_t off;

    if (n == 0)
        return KP_OK;
    if (n > 32766) /* SQLITE_MAX_VARIABLE_NUMBER */
        return KP_ERR_STORE;
    /* one bound parameter per label: "?,?,...?" */
    sql = xmalloc(sizeof(head) + 2 * (n - 1) + sizeof(tail));
    memcpy(sql, head, sizeof(head) - 1);
    off = sizeof(head) - 1;
    for (size_t i = 1; i < n; i++) {
        sql[off++] = ',';
        sql[off++] = '?';
    }
    memcpy(sql + off, tail, sizeof(tail));
    pthread_mutex_lock(&st->lock);
    if (sq_prepare(st->db, sql, &stmt, "list revoked certificates") != KP_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (sqlite3_bind_text(stmt, (int)i + 1, labels[i], -1, SQLITE_STATIC) != SQLITE_OK) {
            sq_log(st->db, "list revoked certificates");
            goto out;
        }
    }
    for (;;) {
        struct store_revoked r;
        int step = sqlite3_step(stmt);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            sq_log(st->db, "list revoked certificates");
            goto out;
        }
        /* borrowed: valid until the next step */
        r.serial = (const char *)sqlite3_column_text(stmt, 0);
        r.revoked_at = sqlite3_column_int64(stmt, 1);
        r.reason = (const char *)sqlite3_column_text(stmt, 2);
        cb(&r, arg);
    }
    rc = KP_OK;
out:
    rc = sq_refine(st->db, rc);
    sqlite3_finalize(stmt);
    sq_unlock(st);
    free(sql);
    return rc;
}

const struct store_ops store_sqlite_ops = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .issue = sq_issue,
    .cert_get = sq_cert_get,
    .cert_list = sq_cert_list,
    .cert_count = sq_cert_count,
    .otp_insert = sq_otp_insert,
    .otp_find = sq_otp_find,
    .otp_list = sq_otp_list,
    .otp_revoke = sq_otp_revoke,
    .audit_add = sq_audit_add,
    .audit_list = sq_audit_list,
    .pending_put = sq_pending_put,
    .pending_find = sq_pending_find,
    .pending_get = sq_pending_get,
    .pending_list = sq_pending_list,
    .pending_decide = sq_pending_decide,
    .pending_issue = sq_pending_issue,
    .key_archive_get = sq_key_archive_get,
    .cert_query = sq_cert_query,
    .cert_revoke = sq_cert_revoke,
    .revoked_list = sq_revoked_list,
};
