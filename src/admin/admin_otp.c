/* One-time passwords: generate, list, revoke. The OTP itself is returned
 * once, in the generate answer, and never logged or stored. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_internal.h"
#include "auth/otp.h"
#include "auth/otpbind.h"
#include "core/log.h"
#include "core/xalloc.h"

#define OTP_TTL_MAX (366L * 86400)
#define OTP_USES_MAX 1000000

/* An integer member in [min, max], or def when absent; false after 400. */
static bool member_int(struct admin_call *x, json_t *body, const char *name, json_int_t def,
                       json_int_t min, json_int_t max, json_int_t *out)
{
    json_t *v = json_object_get(body, name);

    *out = def;
    if (v == NULL)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be an integer from %lld to %lld", name, (long long)min,
                 (long long)max);
        admin_error(x, 400, "bad_request", msg);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* The optional "subject" and "sans" members into their canonical forms
 * (otpbind.h); false after 400. */
static bool member_binds(struct admin_call *x, json_t *body, char **subject, char **sans)
{
    json_t *sj = json_object_get(body, "subject"), *aj = json_object_get(body, "sans");
    const char *list[OTPBIND_SANS_MAX];
    const char *why;
    char msg[160];
    size_t n;

    if (sj != NULL && !json_is_null(sj)) {
        if (!json_is_string(sj)) {
            admin_error(x, 400, "bad_request", "subject must be a string such as \"/CN=name\"");
            return false;
        }
        why = otpbind_subject_parse(json_string_value(sj), subject);
        if (why != NULL) {
            snprintf(msg, sizeof(msg), "subject: %s", why);
            admin_error(x, 400, "bad_request", msg);
            return false;
        }
    }
    if (aj == NULL || json_is_null(aj))
        return true;
    n = json_is_array(aj) ? json_array_size(aj) : 0;
    if (n == 0 || n > OTPBIND_SANS_MAX) {
        admin_error(x, 400, "bad_request",
                    "sans must be an array of 1 to 32 strings such as \"DNS:name\"");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        list[i] = json_string_value(json_array_get(aj, i));
        if (list[i] == NULL) {
            admin_error(x, 400, "bad_request",
                        "sans must be an array of 1 to 32 strings such as \"DNS:name\"");
            return false;
        }
    }
    why = otpbind_sans_parse(list, n, sans);
    if (why != NULL) {
        snprintf(msg, sizeof(msg), "sans: %s", why);
        admin_error(x, 400, "bad_request", msg);
        return false;
    }
    return true;
}

/* The canonical "DNS:a,IP:b" as a JSON array, or null. */
static json_t *sans_json(const char *sans)
{
    json_t *a;

    if (sans == NULL)
        return json_null();
    a = json_array();
    for (const char *p = sans; *p != '\0';) {
        size_t n = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, n));
        p += n;
        if (*p == ',')
            p++;
    }
    return a;
}

static void otp_generate_route(struct admin_call *x)
{
    json_t *body = admin_body(x);
    const char *entity, *label = NULL, *why;
    char *subject = NULL, *sans = NULL;
    json_int_t ttl, uses;
    unsigned char hash[STORE_OTP_HASH_LEN];
    char otp[OTP_LEN + 1];
    struct store_otp row = {0};
    int64_t id = 0;
    enum kp_err rc;

    if (body == NULL)
        return;
    entity = json_string_value(json_object_get(body, "entity_id"));
    if (entity == NULL) {
        admin_error(x, 400, "bad_request", "entity_id must be a string of 1 to 256 characters");
        goto out;
    }
    why = otpbind_entity_check(entity);
    if (why != NULL) {
        admin_error(x, 400, "bad_request", why);
        goto out;
    }
    if (json_object_get(body, "label") != NULL && !json_is_null(json_object_get(body, "label"))) {
        label = json_string_value(json_object_get(body, "label"));
        if (label == NULL || est_server_label_index(x->a->est, label) < 0) {
            admin_error(x, 400, "unknown_label", "label must name a configured label");
            goto out;
        }
    }
    if (!member_int(x, body, "ttl", x->a->cfg->otp_default_ttl, 60, OTP_TTL_MAX, &ttl) ||
        !member_int(x, body, "uses", x->a->cfg->otp_default_uses, 1, OTP_USES_MAX, &uses) ||
        !member_binds(x, body, &subject, &sans))
        goto out;
    row.entity_id = (char *)entity;
    row.label = (char *)label;
    row.created_at = (int64_t)time(NULL);
    row.expires_at = row.created_at + ttl;
    row.uses_left = row.uses_total = uses;
    row.subject = subject; /* borrowed */
    row.sans = sans;       /* borrowed */
    if (otp_generate(otp) != KP_OK) {
        admin_error(x, 500, "internal_error", "cannot generate an OTP");
        goto out;
    }
    otp_hash(est_server_otp_key(x->a->est), otp, OTP_LEN, hash);
    rc = store_otp_insert(x->a->store, hash, &row, &id);
    if (rc != KP_OK) {
        admin_store_error(x, rc);
        goto out;
    }
    log_info("admin: %s created OTP %lld for %s", x->who, (long long)id, entity);
    admin_json(x, 201,
               json_pack("{s:I, s:s, s:s, s:s?, s:I, s:I, s:s?, s:o}", "id", (json_int_t)id,
                         "token", otp, "entity_id", entity, "label", label, "expires_at",
                         (json_int_t)row.expires_at, "uses", uses, "subject", subject, "sans",
                         sans_json(sans)));
out:
    free(subject);
    free(sans);
    OPENSSL_cleanse(otp, sizeof(otp));
    json_decref(body);
}

static void otp_list_one(const struct store_otp *o, void *arg)
{
    time_t now = time(NULL);
    const char *state = o->revoked             ? "revoked"
                        : o->expires_at <= now ? "expired"
                        : o->uses_left <= 0    ? "used"
                                               : "active";

    json_array_append_new(arg, json_pack("{s:I, s:s, s:s?, s:I, s:I, s:I, s:I, s:s, s:s?, s:o}",
                                         "id", (json_int_t)o->id, "entity_id", o->entity_id,
                                         "label", o->label, "created_at", (json_int_t)o->created_at,
                                         "expires_at", (json_int_t)o->expires_at, "uses_left",
                                         (json_int_t)o->uses_left, "uses_total",
                                         (json_int_t)o->uses_total, "state", state, "subject",
                                         o->subject, "sans", sans_json(o->sans)));
}

static void otp_revoke_route(struct admin_call *x, const char *id_text)
{
    char *end = NULL;
    long long id = strtoll(id_text, &end, 10);
    char detail[32];
    struct store_audit ev = {.event = "otp.revoke",
                             .outcome = "ok",
                             .subject = x->who,
                             .peer = x->req->peer_addr,
                             .detail = detail};
    enum kp_err rc;

    if (end == id_text || *end != '\0' || id <= 0) {
        admin_error(x, 404, "not_found", "no OTP with this id");
        return;
    }
    snprintf(detail, sizeof(detail), "otp %lld", id);
    rc = store_otp_revoke(x->a->store, (int64_t)id, &ev);
    if (rc == KP_ERR_NOT_FOUND)
        admin_error(x, 404, "not_found", "no OTP with this id");
    else if (rc != KP_OK)
        admin_store_error(x, rc);
    else
        admin_json(x, 200, json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", "revoked"));
}

void admin_route_otp(struct admin_call *x, const char *rest)
{
    if (*rest == '\0') {
        json_t *list = json_array();
        enum kp_err rc;
        if (!admin_method_is(x, "GET")) {
            json_decref(list);
            return;
        }
        rc = store_otp_list(x->a->store, otp_list_one, list);
        if (rc != KP_OK) {
            json_decref(list);
            admin_store_error(x, rc);
            return;
        }
        admin_json(x, 200, json_pack("{s:o}", "otps", list));
    } else if (strcmp(rest, "/generate") == 0) {
        if (admin_method_is(x, "POST"))
            otp_generate_route(x);
    } else if (admin_method_is(x, "DELETE")) {
        otp_revoke_route(x, rest + 1);
    }
}
