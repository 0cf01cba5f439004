/* The durable record: certificates, OTPs, audit events. One interface, one
 * back end per file, chosen by the URL scheme (sqlite:PATH or
 * postgresql://...). No SQL outside store/. All functions are safe to call
 * from several threads. */
#ifndef KP_STORE_H
#define KP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define STORE_OTP_HASH_LEN 32
#define STORE_POOL_DEFAULT 4

/* Settings from [store] beyond the URL; a back end uses those that apply. */
struct store_opts {
    long pool_size; /* PostgreSQL connections per handle; 0: STORE_POOL_DEFAULT */
};

/* A certificate row. Strings are owned by the row (store_cert_free). */
struct store_cert {
    char *serial; /* lowercase hex, no leading zeros beyond what DER has */
    char *label;
    char *subject; /* RFC 2253 one-line form */
    char *sans;    /* comma-separated "DNS:x, IP:y" */
    int64_t not_before;
    int64_t not_after;
    int64_t issued_at;
    char *requester;   /* OTP entity id, PSK identity or certificate subject */
    char *auth_method; /* "otp", "mtls" or "psk" */
    char *status;      /* "valid" or "revoked" */
    int64_t revoked_at;
    unsigned char *der;
    size_t der_len;
    /* serverkeygen with archival: the generated key as CMS EnvelopedData
     * under the label's archive key; written with the certificate when not
     * NULL (borrowed), never read back into this struct. */
    const unsigned char *archived_key;
    size_t archived_key_len;
};

/* An OTP row; the OTP itself is never stored, only its keyed hash. */
struct store_otp {
    int64_t id;
    char *entity_id;
    char *label; /* NULL: any label */
    int64_t created_at;
    int64_t expires_at;
    int64_t uses_left;
    int64_t uses_total;
    bool revoked;
    /* Bound by the operator at creation (docs/otp-identity.md), NULL when not:
     * the one subject a CSR may carry ("/CN=x/O=y", otpbind_subject_parse) and
     * the SANs a CSR's may be taken from ("DNS:x,IP:y", otpbind_sans_parse). */
    char *subject;
    char *sans;
};

/* A request held for an operator (label approval = "manual", RFC 7030 4.2.3).
 * A retry is matched by label, operation, requester and fingerprint (public
 * key, subject and SANs), not by the CSR's bytes: a client re-signs on every
 * retry. Strings and csr are owned by the row (store_pending_free). */
struct store_pending {
    int64_t id;
    char *label;
    char *operation;    /* "simpleenroll", "simplereenroll" or "serverkeygen" */
    char *requester;    /* OTP entity id, PSK identity or certificate subject */
    char *auth_method;  /* "otp", "mtls" or "psk" */
    int64_t otp_id;     /* the OTP use it consumed when accepted; 0 for mTLS */
    char *csr_sha256;   /* lowercase hex of SHA-256 over the CSR DER */
    char *fingerprint;  /* csr_fingerprint(): "" on rows held before it was kept */
    char *subject;      /* CSR subject (RFC 2253), for the operator */
    char *sans;         /* the SANs, one a line ("DNS:a\nIP:1.2.3.4"), escaped; "" when none */
    char *key_type;     /* key the certificate will carry ("ec:P-256", "rsa:2048") */
    char *ekus;         /* EKUs it will carry, comma-separated ("clientAuth,serverAuth") */
    unsigned char *csr; /* CSR DER */
    size_t csr_len;
    char *status; /* "pending", "approved", "rejected" or "issued" */
    int64_t created_at;
    int64_t expires_at; /* after this the row is ignored: a retry is a new request */
    int64_t decided_at; /* 0 until approved or rejected */
    char *decided_by;   /* who approved or rejected, NULL until then */
    char *serial;       /* certificate issued for it, NULL until then */
};

/* An audit event; all fields borrowed. Never put a secret here. */
struct store_audit {
    const char *event;   /* "enroll", "reenroll", "otp.create", "otp.revoke", ... */
    const char *outcome; /* "ok" or a kp_err code */
    const char *label;
    const char *subject; /* who: entity id or certificate subject */
    const char *peer;    /* client address */
    const char *detail;  /* serial issued, or the failure reason */
};

/* What the admin API lists: every field optional (NULL or 0: no filter). */
struct store_cert_query {
    const char *label;
    const char *status;  /* "valid" or "revoked" */
    const char *subject; /* substring of the subject */
    int64_t limit;       /* 0: no limit */
    int64_t offset;
};

/* One entry of a CRL: borrowed, valid during the callback. */
struct store_revoked {
    const char *serial;
    int64_t revoked_at;
    const char *reason; /* RFC 5280 5.3.1 name, e.g. "keyCompromise"; may be NULL */
};

struct store;

/* List callbacks run while the handle is locked: they must not call the store. */
typedef void (*store_cert_cb)(const struct store_cert *c, void *arg);
typedef void (*store_otp_cb)(const struct store_otp *o, void *arg);
typedef void (*store_audit_cb)(int64_t at, const struct store_audit *a, void *arg);
typedef void (*store_revoked_cb)(const struct store_revoked *r, void *arg);
typedef void (*store_pending_cb)(const struct store_pending *p, void *arg);

struct store_ops {
    const char *scheme; /* "sqlite", "postgresql" */
    /* location: the URL after "scheme:"; opts never NULL */
    enum kp_err (*open)(const char *location, const struct store_opts *opts, struct store **out);
    void (*close)(struct store *s);
    enum kp_err (*issue)(struct store *s, const struct store_cert *c, int64_t otp_id,
                         const struct store_audit *ev);
    enum kp_err (*cert_get)(struct store *s, const char *serial, struct store_cert **out);
    enum kp_err (*cert_list)(struct store *s, const char *label, store_cert_cb cb, void *arg);
    enum kp_err (*cert_count)(struct store *s, int64_t *out);
    enum kp_err (*otp_insert)(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                              const struct store_otp *o, int64_t *id_out);
    enum kp_err (*otp_find)(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                            struct store_otp **out);
    enum kp_err (*otp_list)(struct store *s, store_otp_cb cb, void *arg);
    enum kp_err (*otp_revoke)(struct store *s, int64_t id, const struct store_audit *ev);
    enum kp_err (*audit_add)(struct store *s, const struct store_audit *ev);
    enum kp_err (*audit_list)(struct store *s, int64_t since, store_audit_cb cb, void *arg);
    enum kp_err (*cert_query)(struct store *s, const struct store_cert_query *q, store_cert_cb cb,
                              void *arg, int64_t *total);
    enum kp_err (*cert_revoke)(struct store *s, const char *serial, const char *reason, int64_t at,
                               const struct store_audit *ev);
    enum kp_err (*revoked_list)(struct store *s, const char *const *labels, size_t n,
                                store_revoked_cb cb, void *arg);
    enum kp_err (*pending_put)(struct store *s, const struct store_pending *p,
                               const struct store_audit *ev, int64_t *id_out);
    enum kp_err (*pending_find)(struct store *s, const char *label, const char *operation,
                                const char *requester, const char *fingerprint,
                                const char *csr_sha256, int64_t now, struct store_pending **out);
    enum kp_err (*pending_get)(struct store *s, int64_t id, struct store_pending **out);
    enum kp_err (*pending_list)(struct store *s, const char *status, int64_t now,
                                store_pending_cb cb, void *arg);
    enum kp_err (*pending_decide)(struct store *s, int64_t id, const char *status,
                                  const char *decided_by, int64_t now,
                                  const struct store_audit *ev);
    enum kp_err (*pending_issue)(struct store *s, int64_t id, const struct store_cert *c,
                                 const struct store_audit *ev);
    enum kp_err (*key_archive_get)(struct store *s, const char *serial, unsigned char **der,
                                   size_t *len);
};

/* Every back end's handle starts with this. */
struct store {
    const struct store_ops *ops;
};

/* Open by URL ("sqlite:/path/kipuka.db", "postgresql://user@host/db");
 * creates and migrates the schema. opts may be NULL (defaults). */
enum kp_err store_open(const char *url, struct store **out);
enum kp_err store_open_opts(const char *url, const struct store_opts *opts, struct store **out);
/* The URL as logs may show it: no password, no query string. Caller frees. */
char *store_url_shown(const char *url);
void store_close(struct store *s);

/* Commit an issued certificate atomically with its audit event and, when
 * otp_id > 0, the consumption of one use of that OTP. KP_ERR_UNAUTHORIZED if
 * the OTP was used up, expired or revoked meanwhile (nothing is written);
 * KP_ERR_CONFLICT if the serial already exists. Commit before answer.
 * Every function may return KP_ERR_UNAVAILABLE: the database cannot be
 * reached or written now (nothing was written; retry later). */
enum kp_err store_issue(struct store *s, const struct store_cert *c, int64_t otp_id,
                        const struct store_audit *ev);
/* KP_ERR_NOT_FOUND when no such serial. *out owned by caller. */
enum kp_err store_cert_get(struct store *s, const char *serial, struct store_cert **out);
/* Calls cb for each certificate (of label, or all when NULL), newest first. */
enum kp_err store_cert_list(struct store *s, const char *label, store_cert_cb cb, void *arg);
enum kp_err store_cert_count(struct store *s, int64_t *out);
void store_cert_free(struct store_cert *c);

/* Insert an OTP by its keyed hash; the store writes the "otp.create" audit event
 * (entity, label, new id) in the same commit. */
enum kp_err store_otp_insert(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                             const struct store_otp *o, int64_t *id_out);
/* The OTP with this hash, whatever its state; KP_ERR_NOT_FOUND if none. */
enum kp_err store_otp_find(struct store *s, const unsigned char hash[STORE_OTP_HASH_LEN],
                           struct store_otp **out);
enum kp_err store_otp_list(struct store *s, store_otp_cb cb, void *arg);
/* KP_ERR_NOT_FOUND when no such id. */
enum kp_err store_otp_revoke(struct store *s, int64_t id, const struct store_audit *ev);
void store_otp_free(struct store_otp *o);

/* Certificates matching q, newest first; *total counts all matches, without
 * limit and offset. */
enum kp_err store_cert_query(struct store *s, const struct store_cert_query *q, store_cert_cb cb,
                             void *arg, int64_t *total);
/* Mark a valid certificate revoked at `at`, with its audit event in the same
 * commit. KP_ERR_NOT_FOUND: no such serial; KP_ERR_CONFLICT: already revoked. */
enum kp_err store_cert_revoke(struct store *s, const char *serial, const char *reason, int64_t at,
                              const struct store_audit *ev);
/* The revoked certificates of any of the n labels, oldest revocation first:
 * for the CRL of a CA, all the labels that issue under it (RFC 5280 5.2.5: a
 * complete CRL lists every revoked certificate of its issuer). */
enum kp_err store_revoked_list(struct store *s, const char *const *labels, size_t n,
                               store_revoked_cb cb, void *arg);

enum kp_err store_audit_add(struct store *s, const struct store_audit *ev);
/* Events with time >= since, oldest first. */
enum kp_err store_audit_list(struct store *s, int64_t since, store_audit_cb cb, void *arg);

/* Hold a request for an operator: insert p (status "pending"; id, status and
 * decision fields are ignored) with its audit event and, when p->otp_id > 0,
 * the consumption of one use of that OTP, in one commit. KP_ERR_UNAUTHORIZED
 * when the OTP was used up meanwhile (nothing is written). */
enum kp_err store_pending_put(struct store *s, const struct store_pending *p,
                              const struct store_audit *ev, int64_t *id_out);
/* The newest row for this label, operation, requester and fingerprint that
 * is pending, approved or rejected and has not expired at now; a row held
 * before fingerprints were kept (fingerprint "") matches by csr_sha256.
 * KP_ERR_NOT_FOUND when none (an issued or expired row makes a retry a new
 * request). */
enum kp_err store_pending_find(struct store *s, const char *label, const char *operation,
                               const char *requester, const char *fingerprint,
                               const char *csr_sha256, int64_t now, struct store_pending **out);
/* Any row by id, whatever its state. KP_ERR_NOT_FOUND when none. */
enum kp_err store_pending_get(struct store *s, int64_t id, struct store_pending **out);
/* Rows oldest first; status NULL for all, or one status ("expired" selects
 * pending/approved rows past expires_at at now; "pending" only live ones). */
enum kp_err store_pending_list(struct store *s, const char *status, int64_t now,
                               store_pending_cb cb, void *arg);
/* An operator's decision: status "approved" or "rejected", only for a row
 * still pending and not expired at now, committed with its audit event.
 * KP_ERR_NOT_FOUND when no such live pending row. */
enum kp_err store_pending_decide(struct store *s, int64_t id, const char *status,
                                 const char *decided_by, int64_t now, const struct store_audit *ev);
/* Commit the certificate issued for an approved row: the row becomes "issued"
 * with c->serial, the certificate and the audit event go in, one commit.
 * KP_ERR_NOT_FOUND when the row is no longer "approved" (a concurrent retry
 * was served first); KP_ERR_CONFLICT on a serial collision. */
enum kp_err store_pending_issue(struct store *s, int64_t id, const struct store_cert *c,
                                const struct store_audit *ev);
void store_pending_free(struct store_pending *p);

/* The archived key of the certificate with this serial (CMS EnvelopedData,
 * still encrypted; caller frees). KP_ERR_NOT_FOUND when none was archived. */
enum kp_err store_key_archive_get(struct store *s, const char *serial, unsigned char **der,
                                  size_t *len);

/* "SQLite 3.40.1, libpq 15.x": the libraries the back ends run on, for
 * `kipuka version`. */
void store_library_versions(char *buf, size_t len);

#endif
