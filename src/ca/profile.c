#include "ca/profile.h"

#include <string.h>

/* notBefore is set this far in the past to absorb client clock skew. */
#define PROFILE_BACKDATE 300

/* CA/B Forum BR 6.3.2 (ballot SC-081): the maximum validity by issuance date. */
static const struct {
    time_t until; /* first second at which the next step applies */
    long days;
} br_schedule[] = {
    {1773532800, 398}, /* 2026-03-15T00:00:00Z */
    {1805068800, 200}, /* 2027-03-15T00:00:00Z */
    {1868227200, 100}, /* 2029-03-15T00:00:00Z */
};

long profile_br_max_days(time_t now)
{
    for (size_t i = 0; i < sizeof(br_schedule) / sizeof(br_schedule[0]); i++)
        if (now < br_schedule[i].until)
            return br_schedule[i].days;
    return 47;
}

/* Subject attributes an end-entity certificate may carry. */
static int profile_rdn_allowed(int nid)
{
    static const int allowed[] = {
        NID_commonName,        NID_organizationName,    NID_organizationalUnitName,
        NID_countryName,       NID_stateOrProvinceName, NID_localityName,
        NID_serialNumber,      NID_domainComponent,     NID_userId,
        NID_pkcs9_emailAddress};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (allowed[i] == nid)
            return 1;
    return 0;
}

static const char *profile_check_subject(const X509_NAME *name)
{
    int n = X509_NAME_entry_count(name);
    for (int i = 0; i < n; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
        if (!profile_rdn_allowed(nid))
            return "subject attribute not allowed by the profile";
        if (ASN1_STRING_length(v) < 1 || ASN1_STRING_length(v) > 64)
            return "subject attribute empty or longer than 64 characters";
        if (nid == NID_countryName && ASN1_STRING_length(v) != 2)
            return "countryName must be two letters";
    }
    return NULL;
}

/* Preferred name syntax (RFC 5280 4.2.1.6, RFC 1034 3.5): dot-separated labels
 * of 1-63 letters, digits and hyphens, no hyphen at either end of a label. */
static int profile_dns_valid(const ASN1_IA5STRING *s)
{
    const unsigned char *p = ASN1_STRING_get0_data(s);
    int len = ASN1_STRING_length(s), start = 0;

    if (len < 1 || len > 253)
        return 0;
    for (int i = 0; i <= len; i++) {
        if (i == len || p[i] == '.') {
            int n = i - start;
            if (n < 1 || n > 63 || p[start] == '-' || p[i - 1] == '-')
                return 0;
            start = i + 1;
            continue;
        }
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
              (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
            return 0;
    }
    return 1;
}

static const char *profile_check_sans(const struct label_cfg *label, const GENERAL_NAMES *sans)
{
    int n = sans ? sk_GENERAL_NAME_num(sans) : 0;
    if (n > label->max_sans)
        return "too many subjectAltName entries";
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        switch (g->type) {
        case GEN_DNS:
            if (!profile_dns_valid(g->d.dNSName))
                return "subjectAltName dNSName is not a valid host name";
            break;
        case GEN_IPADD:
            if (g->d.iPAddress->length != 4 && g->d.iPAddress->length != 16)
                return "subjectAltName iPAddress has a bad length";
            break;
        case GEN_EMAIL:
        case GEN_URI:
            if (ASN1_STRING_length(g->d.ia5) < 1 || ASN1_STRING_length(g->d.ia5) > 255)
                return "subjectAltName rfc822Name/URI empty or too long";
            break;
        default:
            return "subjectAltName type not allowed (DNS, IP, email and URI are)";
        }
    }
    return NULL;
}

enum kp_err profile_apply(const struct label_cfg *label, const struct ca *ca, const struct csr *csr,
                          time_t now, struct ca_template *t, const char **why)
{
    struct tm ca_tm;
    time_t ca_end;
    long days;
    int nsans = csr->sans ? sk_GENERAL_NAME_num(csr->sans) : 0;

    if (csr->key_type < 0 || !(label->key_types & (1u << csr->key_type))) {
        *why = "public key type or size not allowed for this label";
        return KP_ERR_KEY_TYPE;
    }
    *why = profile_check_subject(csr->subject);
    if (*why == NULL && X509_NAME_entry_count(csr->subject) == 0 && nsans == 0)
        *why = "CSR has neither a subject nor a subjectAltName";
    if (*why == NULL)
        *why = profile_check_sans(label, csr->sans);
    if (*why != NULL)
        return KP_ERR_POLICY;

    if (ASN1_TIME_to_tm(X509_get0_notAfter(ca->cert), &ca_tm) != 1) {
        *why = "CA notAfter unreadable";
        return KP_ERR_INTERNAL;
    }
    ca_end = timegm(&ca_tm);
    if (ca_end <= now) {
        *why = "the CA certificate has expired";
        return KP_ERR_UNAVAILABLE;
    }
    days = label->max_validity_days;
    if (days > profile_br_max_days(now))
        days = profile_br_max_days(now);

    memset(t, 0, sizeof(*t));
    t->subject = csr->subject;
    t->sans = csr->sans;
    t->pubkey = csr->pubkey;
    t->spki = X509_REQ_get_X509_PUBKEY(csr->req);
    t->not_before = now - PROFILE_BACKDATE;
    /* validity counts both ends (RFC 5280 4.1.2.5), so a day-count ends 1 s early */
    t->not_after = t->not_before + (time_t)days * 86400 - 1;
    if (t->not_after > ca_end)
        t->not_after = ca_end;
    t->ekus = label->ekus;
    *why = NULL;
    return KP_OK;
}
