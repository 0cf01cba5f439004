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
    char *requester;   /* OTP entity id or client certificate subject */
    char *auth_method; /* "otp" or "mtls" */
    char *status;      /* "valid" or "revoked" */
    int64_t revoked_at;
    unsigned char *der;
    size_t der_len;
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

struct store;

/* List callbacks run while the handle is locked: they must not call the store. */
typedef void (*store_cert_cb)(const struct store_cert *c, void *arg);
typedef void (*store_otp_cb)(const struct store_otp *o, void *arg);
typedef void (*store_audit_cb)(int64_t at, const struct store_audit *a, void *arg);

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

enum kp_err store_audit_add(struct store *s, const struct store_audit *ev);
/* Events with time >= since, oldest first. */
enum kp_err store_audit_list(struct store *s, int64_t since, store_audit_cb cb, void *arg);

#endif
