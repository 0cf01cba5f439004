#include "auth/otpbind.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/strbuf.h"
#include "core/xalloc.h"

static bool has_control(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return true;
    return false;
}

const char *otpbind_entity_check(const char *id)
{
    size_t n = id == NULL ? 0 : strlen(id);

    if (n == 0 || n > OTPBIND_ENTITY_MAX)
        return "the entity id must be 1 to 256 bytes";
    if (strchr(id, ':') != NULL)
        return "the entity id cannot contain ':' (it ends the HTTP Basic user name)";
    if (has_control((const unsigned char *)id, n))
        return "the entity id cannot contain control characters";
    return NULL;
}

/* "/T=v/T=v" into a new name; NULL or why not. */
static const char *subject_to_name(const char *dn, X509_NAME **out)
{
    size_t n = strlen(dn);
    X509_NAME *name = NULL;
    char *val = NULL;
    const char *p = dn, *why = NULL;

    if (n > OTPBIND_SUBJECT_MAX)
        return "the subject is longer than 1024 bytes";
    if (dn[0] != '/')
        return "the subject must be written /CN=name/O=org (as openssl req -subj takes it)";
    if (has_control((const unsigned char *)dn, n))
        return "the subject cannot contain control characters";
    name = X509_NAME_new();
    val = xmalloc(n + 1);
    while (*p == '/') {
        char type[64];
        size_t tlen = 0, vlen = 0;

        p++;
        tlen = strcspn(p, "=/");
        if (tlen == 0 || tlen >= sizeof(type) || p[tlen] != '=') {
            why = "each part of the subject must be TYPE=value";
            goto out;
        }
        memcpy(type, p, tlen);
        type[tlen] = '\0';
        p += tlen + 1;
        while (*p != '\0' && *p != '/') {
            if (*p == '\\') {
                p++;
                if (*p == '\0') {
                    why = "the subject ends with a lone '\\'";
                    goto out;
                }
            }
            val[vlen++] = *p++;
        }
        if (vlen == 0) {
            why = "a subject attribute has an empty value";
            goto out;
        }
        if (X509_NAME_add_entry_by_txt(name, type, MBSTRING_UTF8, (unsigned char *)val, (int)vlen,
                                       -1, 0) != 1) {
            ERR_clear_error();
            why = "unknown subject attribute type, or a value it cannot hold";
            goto out;
        }
    }
    if (X509_NAME_entry_count(name) == 0) {
        why = "the subject must be written /CN=name/O=org (as openssl req -subj takes it)";
        goto out;
    }
    *out = name;
    name = NULL; /* steal */
out:
    X509_NAME_free(name);
    free(val);
    return why;
}

/* The "/T=v/T=v" form of a name; NULL when a value is not valid UTF-8. */
static char *name_canon(const X509_NAME *name)
{
    struct strbuf b = {0};

    for (int i = 0; i < X509_NAME_entry_count(name); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
        int nid = OBJ_obj2nid(obj);
        unsigned char *u = NULL;
        char oid[80];
        int ulen = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));

        if (ulen < 0) {
            free(b.s);
            return NULL;
        }
        if (nid != NID_undef)
            snprintf(oid, sizeof(oid), "%s", OBJ_nid2sn(nid));
        else if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
            oid[0] = '\0';
        strbuf_add(&b, "/", 1);
        strbuf_add(&b, oid, strlen(oid));
        strbuf_add(&b, "=", 1);
        for (int j = 0; j < ulen; j++) {
            if (u[j] == '/' || u[j] == '\\')
                strbuf_add(&b, "\\", 1);
            strbuf_add(&b, (const char *)&u[j], 1);
        }
        OPENSSL_free(u);
    }
    return b.s;
}

const char *otpbind_subject_parse(const char *dn, char **canon)
{
    X509_NAME *name = NULL;
    const char *why = subject_to_name(dn, &name);
    char *c;

    if (why != NULL)
        return why;
    c = name_canon(name);
    X509_NAME_free(name);
    if (c == NULL)
        return "the subject is not valid UTF-8";
    *canon = c;
    return NULL;
}

/* A DNS name of LDH labels separated by single dots (RFC 1123 2.1). */
static bool dns_name_ok(const unsigned char *p, size_t n)
{
    size_t label = 0;

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.') {
            if (label == 0 || p[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum(p[i]) || (p[i] == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && p[n - 1] != '-';
}

/* The canonical text of one name ("DNS:a.example", "IP:2001:db8::1"), or
 * NULL when it has none (another type, a NUL, a comma, a control character). */
static char *san_canon(int type, const unsigned char *p, size_t n)
{
    char ip[INET6_ADDRSTRLEN];

    switch (type) {
    case GEN_DNS:
        if (!dns_name_ok(p, n))
            return NULL;
        {
            char *s = xasprintf("DNS:%.*s", (int)n, (const char *)p);
            for (char *q = s + 4; *q; q++)
                *q = (char)tolower((unsigned char)*q);
            return s;
        }
    case GEN_IPADD:
        if ((n == 4 && inet_ntop(AF_INET, p, ip, sizeof(ip)) != NULL) ||
            (n == 16 && inet_ntop(AF_INET6, p, ip, sizeof(ip)) != NULL))
            return xasprintf("IP:%s", ip);
        return NULL;
    case GEN_EMAIL:
    case GEN_URI:
        if (n == 0 || n > OTPBIND_SAN_MAX || memchr(p, '\0', n) != NULL ||
            memchr(p, ',', n) != NULL || memchr(p, ' ', n) != NULL || has_control(p, n))
            return NULL;
        if (type == GEN_EMAIL && (memchr(p, '@', n) == NULL))
            return NULL;
        if (type == GEN_URI && (memchr(p, ':', n) == NULL))
            return NULL;
        return xasprintf("%s:%.*s", type == GEN_EMAIL ? "email" : "URI", (int)n, (const char *)p);
    default:
        return NULL;
    }
}

/* The canonical text of "TYPE:value" as an operator writes it; NULL or why not. */
static const char *san_text_canon(const char *san, char **out)
{
    const char *colon = strchr(san, ':'), *v;
    size_t tlen, vlen;
    int type;

    if (strlen(san) > OTPBIND_SAN_MAX)
        return "a SAN is longer than 255 bytes";
    if (colon == NULL)
        return "a SAN must be DNS:name, IP:address, email:address or URI:uri";
    tlen = (size_t)(colon - san);
    v = colon + 1;
    vlen = strlen(v);
    if (tlen == 3 && strncasecmp(san, "DNS", 3) == 0)
        type = GEN_DNS;
    else if (tlen == 2 && strncasecmp(san, "IP", 2) == 0)
        type = GEN_IPADD;
    else if (tlen == 5 && strncasecmp(san, "email", 5) == 0)
        type = GEN_EMAIL;
    else if (tlen == 3 && strncasecmp(san, "URI", 3) == 0)
        type = GEN_URI;
    else
        return "a SAN must be DNS:name, IP:address, email:address or URI:uri";
    if (type == GEN_IPADD) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(v);
        if (ip == NULL) {
            ERR_clear_error();
            return "an IP SAN is not an IPv4 or IPv6 address";
        }
        *out = san_canon(type, ASN1_STRING_get0_data(ip), (size_t)ASN1_STRING_length(ip));
        ASN1_OCTET_STRING_free(ip);
    } else {
        *out = san_canon(type, (const unsigned char *)v, vlen);
    }
    if (*out == NULL)
        return type == GEN_DNS ? "a DNS SAN must be a host name (letters, digits, '-', '.')"
                               : "an email or URI SAN is empty or holds a comma, a space or a "
                                 "control character";
    return NULL;
}

const char *otpbind_sans_parse(const char *const *sans, size_t n, char **canon)
{
    struct strbuf b = {0};

    if (n == 0 || n > OTPBIND_SANS_MAX)
        return "give 1 to 32 SANs";
    for (size_t i = 0; i < n; i++) {
        char *one = NULL;
        const char *why = san_text_canon(sans[i], &one);
        if (why != NULL) {
            free(b.s);
            return why;
        }
        if (i > 0)
            strbuf_add(&b, ",", 1);
        strbuf_add(&b, one, strlen(one));
        free(one);
    }
    *canon = b.s;
    return NULL;
}

/* v is the entity id, or a DNS name whose first label(s) are the entity id:
 * entity "device-001" covers "device-001" and "device-001.example.com". */
static bool of_entity(const unsigned char *v, size_t n, const char *entity)
{
    size_t en = strlen(entity);

    if (n == en && memcmp(v, entity, en) == 0)
        return true;
    return n > en + 1 && memcmp(v, entity, en) == 0 && v[en] == '.' &&
           dns_name_ok(v + en + 1, n - en - 1);
}

/* Every CN is the entity or a name under it, and there is at least one. */
static const char *check_subject_entity(const X509_NAME *subject, const char *entity, bool psk)
{
    int ncn = 0;

    for (int i = 0; i < X509_NAME_entry_count(subject); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(subject, i);
        unsigned char *u = NULL;
        int ulen;
        bool ok;

        if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != NID_commonName)
            continue;
        ncn++;
        ulen = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
        ok = ulen > 0 && of_entity(u, (size_t)ulen, entity);
        OPENSSL_free(u);
        if (!ok)
            return psk ? "CSR CN is neither the PSK identity nor a DNS name under it"
                       : "CSR CN is neither the OTP's entity id nor a DNS name under it";
    }
    if (ncn > 0)
        return NULL;
    return psk ? "CSR subject has no CN (a PSK certifies its identity)"
               : "CSR subject has no CN (the label's otp_subject is \"entity\")";
}

/* Every SAN is a dNSName that is the entity or a name under it. */
static const char *check_sans_entity(const GENERAL_NAMES *sans, const char *entity, bool psk)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != GEN_DNS)
            return psk ? "CSR has a non-DNS subjectAltName (a PSK certifies its identity)"
                       : "CSR has a non-DNS subjectAltName (the label's otp_subject is \"entity\")";
        if (!of_entity(ASN1_STRING_get0_data(gn->d.dNSName),
                       (size_t)ASN1_STRING_length(gn->d.dNSName), entity))
            return psk ? "CSR dNSName is neither the PSK identity nor a DNS name under it"
                       : "CSR dNSName is neither the OTP's entity id nor a DNS name under it";
    }
    return NULL;
}

/* Every SAN is one of the canonical list bound to the OTP. */
static const char *check_sans_bound(const GENERAL_NAMES *sans, const char *bound)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        const ASN1_STRING *s = NULL;
        char *c = NULL;
        bool found = false;

        if (gn->type == GEN_DNS || gn->type == GEN_EMAIL || gn->type == GEN_URI ||
            gn->type == GEN_IPADD)
            s = gn->d.ia5; /* all four are ASN1_STRINGs */
        if (s != NULL)
            c = san_canon(gn->type, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
        if (c != NULL) {
            size_t cl = strlen(c);
            for (const char *p = bound; *p != '\0';) {
                size_t l = strcspn(p, ",");
                if (l == cl && memcmp(p, c, l) == 0)
                    found = true;
                p += l;
                if (*p == ',')
                    p++;
            }
        }
        free(c);
        if (!found)
            return "CSR subjectAltName is not among the SANs bound to the OTP";
    }
    return NULL;
}

enum kp_err otpbind_check(const struct otpbind_rules *r, const X509_NAME *subject,
                          const GENERAL_NAMES *sans, const char **why)
{
    const char *w = NULL;

    if (r->ca_subject != NULL && X509_NAME_cmp(subject, r->ca_subject) == 0) {
        w = "CSR subject is the issuing CA's own name";
    } else if (r->subject != NULL) {
        X509_NAME *bound = NULL;
        if (subject_to_name(r->subject, &bound) != NULL)
            w = "the subject bound to the OTP cannot be read";
        else if (X509_NAME_cmp(subject, bound) != 0)
            w = "CSR subject differs from the subject bound to the OTP";
        X509_NAME_free(bound);
    } else if (r->entity_rule) {
        w = check_subject_entity(subject, r->entity, r->psk);
    }
    if (w == NULL && r->sans != NULL)
        w = check_sans_bound(sans, r->sans);
    else if (w == NULL && r->entity_rule)
        w = check_sans_entity(sans, r->entity, r->psk);
    if (w == NULL)
        return KP_OK;
    *why = w;
    return KP_ERR_FORBIDDEN;
}
