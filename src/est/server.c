/* The EST core's state and dispatcher: label lookup, method checks, then
 * one function per operation. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "est/est_internal.h"
#include "pki/csrattrs.h"

static enum kp_err server_label_init(struct est_label *l, const struct label_cfg *cfg,
                                     char **errmsg)
{
    enum kp_err rc;
    unsigned char *der = NULL;
    size_t der_len = 0;
    struct csrattrs_spec spec = {
        .key_types = cfg->key_types,
        .challenge_password = cfg->channel_binding == CB_REQUIRED,
        .request_san = cfg->max_sans > 0,
        .extra_oids = cfg->csrattrs_extra,
    };

    l->cfg = cfg;
    rc = ca_load(cfg, &l->ca);
    if (rc != KP_OK) {
        *errmsg = xasprintf("label %s: cannot load its CA (see the log above)", cfg->name);
        goto out;
    }
    rc = csrattrs_encode(&spec, &der, &der_len);
    if (rc != KP_OK) {
        *errmsg = xasprintf("label %s: bad csrattrs_extra \"%s\"", cfg->name, cfg->csrattrs_extra);
        goto out;
    }
    l->csrattrs_der = der;
    l->csrattrs_der_len = der_len;
    der = NULL; /* steal */
    if (cfg->serverkeygen_kek_file[0] != '\0') {
        rc = kek_load(cfg->serverkeygen_kek_file, &l->kek);
        if (rc != KP_OK) {
            *errmsg = xasprintf("label %s: bad serverkeygen_kek_file %s (see the log above)",
                                cfg->name, cfg->serverkeygen_kek_file);
            goto out;
        }
    }
    if (cfg->serverkeygen_archive) {
        rc = kek_load(cfg->serverkeygen_archive_key_file, &l->archive);
        const unsigned char *id = NULL;
        size_t id_len = 0, key_len = 0;
        /* the first key archives; later ones only open older archives */
        if (rc == KP_OK && kek_first(l->archive, &id, &id_len, &key_len) == NULL)
            rc = KP_ERR_CONFIG;
        if (rc != KP_OK) {
            *errmsg = xasprintf("label %s: bad serverkeygen_archive_key_file %s (needs a key;"
                                " see the log above)",
                                cfg->name, cfg->serverkeygen_archive_key_file);
            goto out;
        }
    }
out:
    free(der);
    return rc;
}

/* Subjects of the certificates in a stack, appended to names. */
static void server_subjects_add(STACK_OF(X509_NAME) * names, STACK_OF(X509) * certs)
{
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509_NAME *n = X509_NAME_dup(X509_get_subject_name(sk_X509_value(certs, i)));
        if (n == NULL || sk_X509_NAME_push(names, n) <= 0) {
            X509_NAME_free(n);
            log_abort(); /* allocation failure, as xmalloc */
        }
    }
}

/* Client certificate anchors (tls.client_ca, admin.client_ca) and the rule
 * that keeps them apart: admin.client_ca may not be, nor have issued, a
 * label's CA or its chain unless admin.client_ca_may_issue says so, since
 * every certificate that label issues would then chain to it. */
static enum kp_err server_anchors_init(struct est_server *srv, char **errmsg)
{
    const struct kp_config *cfg = srv->cfg;
    enum kp_err rc;

    if (cfg->tls_client_ca[0] != '\0') {
        rc = trust_anchors_load(cfg->tls_client_ca, &srv->client_anchors, errmsg);
        if (rc != KP_OK) {
            char *why = *errmsg;
            *errmsg = xasprintf("tls.client_ca %s", why);
            free(why);
            return rc;
        }
    }
    if (cfg->admin_client_ca[0] != '\0') {
        rc = trust_anchors_load(cfg->admin_client_ca, &srv->admin_anchors, errmsg);
        if (rc != KP_OK) {
            char *why = *errmsg;
            *errmsg = xasprintf("admin.client_ca %s", why);
            free(why);
            return rc;
        }
    }
    for (size_t i = 0;
         srv->admin_anchors != NULL && !cfg->admin_client_ca_may_issue && i < srv->nlabels; i++) {
        STACK_OF(X509) *chain = srv->labels[i].ca->chain;
        for (int j = 0; j < sk_X509_num(chain); j++) {
            if (trust_anchors_cover(srv->admin_anchors, sk_X509_value(chain, j))) {
                *errmsg = xasprintf(
                    "%s: admin.client_ca %s holds or issued the CA of label %s: every "
                    "certificate that label issues would chain to the admin trust anchors. "
                    "Use a CA of their own for admin client certificates, or set "
                    "admin.client_ca_may_issue = true (docs/authorization.md)",
                    cfg->path, cfg->admin_client_ca, srv->labels[i].cfg->name);
                return KP_ERR_CONFIG;
            }
        }
    }
    /* subjects no label may certify: an end entity named like a CA or an
     * admin would be one to whoever compares names */
    srv->ca_subjects = sk_X509_NAME_new_null();
    if (srv->ca_subjects == NULL)
        log_abort();
    for (size_t i = 0; i < srv->nlabels; i++)
        server_subjects_add(srv->ca_subjects, srv->labels[i].ca->chain);
    if (srv->client_anchors != NULL)
        server_subjects_add(srv->ca_subjects, srv->client_anchors->certs);
    if (srv->admin_anchors != NULL)
        server_subjects_add(srv->ca_subjects, srv->admin_anchors->certs);
    return KP_OK;
}

enum kp_err est_server_new(const struct kp_config *cfg, const struct est_services *svc,
                           struct est_server **out, char **errmsg)
{
    enum kp_err rc = KP_ERR_CONFIG;
    struct est_server *srv = xcalloc(1, sizeof(*srv));

    srv->cfg = cfg;
    srv->store = svc->store;
    srv->auth_failures = svc->auth_failures;
    srv->refusals = svc->refusals;
    if (cfg->est_fullcmc) {
        *errmsg = xasprintf("%s: est.fullcmc = true: full CMC is not available in this version",
                            cfg->path);
        goto out;
    }
    rc = otp_key_load(cfg->otp_key_file, srv->otp_key);
    if (rc != KP_OK) {
        *errmsg = xasprintf("cannot load the OTP key %s", cfg->otp_key_file);
        goto out;
    }
    srv->labels = xcalloc(cfg->nlabels, sizeof(*srv->labels));
    for (size_t i = 0; i < cfg->nlabels; i++) {
        srv->nlabels++;
        rc = server_label_init(&srv->labels[i], &cfg->labels[i], errmsg);
        if (rc != KP_OK)
            goto out;
    }
    rc = server_anchors_init(srv, errmsg);
    if (rc != KP_OK)
        goto out;
    /* with the core, so a SIGHUP reads it again (and checks its mode) */
    if (cfg->coap_psk_file[0] != '\0') {
        rc = psk_table_load(cfg->coap_psk_file, cfg, &srv->psk, errmsg);
        if (rc != KP_OK)
            goto out;
    }
    *out = srv;
    srv = NULL; /* steal */
    rc = KP_OK;
out:
    est_server_free(srv);
    return rc;
}

void est_server_free(struct est_server *srv)
{
    if (srv == NULL)
        return;
    for (size_t i = 0; i < srv->nlabels; i++) {
        ca_free(srv->labels[i].ca);
        free(srv->labels[i].csrattrs_der);
        kek_free(srv->labels[i].kek);
        kek_free(srv->labels[i].archive);
    }
    free(srv->labels);
    trust_anchors_free(srv->client_anchors);
    trust_anchors_free(srv->admin_anchors);
    sk_X509_NAME_pop_free(srv->ca_subjects, X509_NAME_free);
    psk_table_free(srv->psk);
    OPENSSL_cleanse(srv->otp_key, sizeof(srv->otp_key));
    free(srv);
}

/* "" is the default label (RFC 7030 3.2.2: the path without a label). */
static const struct est_label *server_label_find(const struct est_server *srv, const char *name)
{
    if (name[0] == '\0')
        name = "default";
    for (size_t i = 0; i < srv->nlabels; i++)
        if (strcmp(srv->labels[i].cfg->name, name) == 0)
            return &srv->labels[i];
    return NULL;
}

void est_handle(struct est_server *srv, const struct est_request *req, struct est_answer *ans)
{
    const struct est_op_info *op = est_op_info(req->op);
    const struct est_label *l;

    memset(ans, 0, sizeof(*ans));
    l = server_label_find(srv, req->label);
    if (l == NULL) {
        est_answer_fail(ans, KP_ERR_UNKNOWN_LABEL, NULL);
        return;
    }
    /* fullcmc is not offered (RFC 7030 4.3 is optional), serverkeygen only
     * when configured */
    if (op == NULL || req->op == EST_OP_FULLCMC ||
        (req->op == EST_OP_SERVERKEYGEN && !srv->cfg->est_serverkeygen)) {
        est_answer_fail(ans, KP_ERR_NOT_FOUND, "operation not enabled");
        return;
    }
    if (req->method != (op->post ? EST_POST : EST_GET)) {
        est_answer_fail(ans, KP_ERR_METHOD, NULL);
        return;
    }
    if (req->op == EST_OP_CACERTS)
        est_cacerts(srv, l, req, ans);
    else if (req->op == EST_OP_CSRATTRS)
        est_csrattrs(srv, l, req, ans);
    else
        est_enroll(srv, l, req, ans);
}

struct store *est_server_store(const struct est_server *srv)
{
    return srv->store;
}

const unsigned char *est_server_otp_key(const struct est_server *srv)
{
    return srv->otp_key;
}

size_t est_server_label_count(const struct est_server *srv)
{
    return srv->nlabels;
}

const char *est_server_label_name(const struct est_server *srv, size_t i)
{
    return i < srv->nlabels ? srv->labels[i].cfg->name : NULL;
}

struct ca *est_server_label_ca(const struct est_server *srv, size_t i)
{
    return i < srv->nlabels ? srv->labels[i].ca : NULL;
}

const struct psk_table *est_server_psk(const struct est_server *srv)
{
    return srv->psk;
}

long est_server_label_index(const struct est_server *srv, const char *name)
{
    for (size_t i = 0; i < srv->nlabels; i++)
        if (strcmp(srv->labels[i].cfg->name, name) == 0)
            return (long)i;
    return -1;
}
