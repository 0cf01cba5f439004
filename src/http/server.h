/* The HTTPS transport of EST (RFC 7030 3.2): N threads, each with its own
 * event loop and SO_REUSEPORT listener, turning requests into est_handle calls.
 * Only src/http/ includes libevent; this header does not. */
#ifndef KP_HTTP_SERVER_H
#define KP_HTTP_SERVER_H

#include "core/config.h"
#include "core/err.h"

struct est_server;
struct http_server;

/* Bind cfg->listen:cfg->port, start cfg->threads workers (0: one per CPU) and print
 * "kipuka: listening on https://HOST:PORT/BASE/" to stdout once all listen. cfg is
 * read only during the call. Ignores SIGPIPE; workers block all signals. On success
 * the server owns est (freed by http_server_free or after a reload); on failure the
 * caller keeps it and *errmsg (caller frees) says why. */
enum kp_err http_server_start(const struct kp_config *cfg, struct est_server *est,
                              struct http_server **out, char **errmsg);

/* The port actually bound (useful when cfg->port is 0). */
int http_server_port(const struct http_server *hs);

/* SIGHUP: new connections get a TLS context from cfg (and its limits), requests get
 * est; connections stay up. Requests already running finish with the old est_server,
 * freed (est_server_free, on whichever thread lets go last) once none holds it.
 * Takes ownership of est, also on failure (freed; the old generation stays).
 * listen, port and threads change only on restart (logged at warn). */
enum kp_err http_server_reload(struct http_server *hs, const struct kp_config *cfg,
                               struct est_server *est, char **errmsg);

/* Stop accepting, close idle keep-alive connections, let in-flight requests
 * finish for at most grace_seconds, then stop the threads. Idempotent. */
void http_server_stop(struct http_server *hs, int grace_seconds);

/* Stop (without grace) if still running, free everything including the current
 * est_server. Accepts NULL. */
void http_server_free(struct http_server *hs);

/* "libevent 2.1.12-stable": for `kipuka version`. */
const char *http_library_version(void);

#endif
