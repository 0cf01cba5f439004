#include "ca/profile.h"

#include <stdlib.h>
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

/* ISO 3166-1 alpha-2 codes (iso-codes 4.15), plus XX, the user-assigned code
 * CA/B BR 7.1.4.2.2 allows for a country without one. Sorted, for bsearch. */
static const char iso3166[][3] = {
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XX", "YE", "YT", "ZA", "ZM", "ZW",
};

static int profile_country_cmp(const void *key, const void *elem)
{
    return memcmp(key, elem, 2);
}

/* countryName (RFC 5280 A.1 X520countryName, CA/B BR 7.1.4.2.2): two
 * upper-case letters naming a country. */
static int profile_country_valid(const unsigned char *p, int len)
{
    return len == 2 && p[0] >= 'A' && p[0] <= 'Z' && p[1] >= 'A' && p[1] <= 'Z' &&
           bsearch(p, iso3166, sizeof(iso3166) / sizeof(iso3166[0]), sizeof(iso3166[0]),
                   profile_country_cmp) != NULL;
}

#define PS (1u << 0)   /* PrintableString */
#define UTF8 (1u << 1) /* UTF8String */
#define IA5 (1u << 2)  /* IA5String */

/* Subject attributes an end-entity certificate may carry, the string types
 * each may use and its upper bound in characters (RFC 5280 A.1, RFC 4519,
 * RFC 2985). Only OU and DC may appear more than once. */
static const struct subject_rule {
    int nid;
    unsigned types;
    int max;
    int repeatable;
} subject_rules[] = {
    {NID_commonName, PS | UTF8, 64, 0},
    {NID_organizationName, PS | UTF8, 64, 0},
    {NID_organizationalUnitName, PS | UTF8, 64, 1},
    {NID_countryName, PS, 2, 0},
    {NID_stateOrProvinceName, PS | UTF8, 128, 0},
    {NID_localityName, PS | UTF8, 128, 0},
    {NID_serialNumber, PS, 64, 0},
    {NID_domainComponent, IA5, 63, 1},
    {NID_userId, PS | UTF8, 64, 0},
    {NID_pkcs9_emailAddress, IA5, 255, 0},
};

static const struct subject_rule *profile_subject_rule(int nid)
{
    for (size_t i = 0; i < sizeof(subject_rules) / sizeof(subject_rules[0]); i++)
        if (subject_rules[i].nid == nid)
            return &subject_rules[i];
    return NULL;
}

/* PrintableString's alphabet (X.680 41.4): letters, digits, space and
 * ' ( ) + , - . / : = ? */
static int profile_printable_valid(const unsigned char *p, int len)
{
    for (int i = 0; i < len; i++) {
        unsigned char ch = p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr(" '()+,-./:=?", ch) != NULL) ||
            ch == '\0')
            return 0;
    }
    return 1;
}

/* Characters of well-formed UTF-8 (RFC 3629: shortest form, no surrogates,
 * at most U+10FFFF) that are not control characters (C0, DEL, C1), bidi
 * embedding, override or isolate controls, the BOM or U+FFFE/U+FFFF;
 * -1 when there is any of those. */
static int profile_utf8_chars(const unsigned char *p, int len)
{
    int chars = 0;

    for (int i = 0; i < len; chars++) {
        unsigned long cp;
        int n;
        if (p[i] < 0x80) {
            cp = p[i];
            n = 1;
        } else if (p[i] >= 0xc2 && p[i] <= 0xdf) {
            cp = p[i] & 0x1f;
            n = 2;
        } else if (p[i] >= 0xe0 && p[i] <= 0xef) {
            cp = p[i] & 0x0f;
            n = 3;
        } else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
            cp = p[i] & 0x07;
            n = 4;
        } else {
            return -1;
        }
        if (i + n > len)
            return -1;
        for (int k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
            (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
            return -1;
        i += n;
    }
    return chars;
}

/* domainComponent (RFC 4519 2.4): one DNS label of letters, digits and
 * hyphens, no hyphen at either end. */
static int profile_dc_valid(const unsigned char *p, int len)
{
    if (len < 1 || p[0] == '-' || p[len - 1] == '-')
        return 0;
    for (int i = 0; i < len; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
              (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
            return 0;
    return 1;
}

/* An addr-spec in plain ASCII: visible characters only, exactly one '@' with
 * something on both sides (RFC 5321 4.1.2, without quoted local parts). */
static int profile_mailbox_valid(const unsigned char *p, int len)
{
    int at = -1;

    for (int i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return 0;
        if (p[i] == '@') {
            if (at >= 0)
                return 0;
            at = i;
        }
    }
    return at > 0 && at < len - 1;
}

/* One attribute value against its rule; NULL or why not. */
static const char *profile_check_value(const struct subject_rule *r, const ASN1_STRING *v)
{
    const unsigned char *p = ASN1_STRING_get0_data(v);
    int len = ASN1_STRING_length(v), chars;

    if (len < 1)
        return "subject attribute is empty";
    switch (ASN1_STRING_type(v)) {
    case V_ASN1_PRINTABLESTRING:
        if (!(r->types & PS))
            break;
        if (!profile_printable_valid(p, len))
            return "subject PrintableString has a character outside its alphabet (X.680 41.4)";
        chars = len;
        goto length;
    case V_ASN1_UTF8STRING:
        if (!(r->types & UTF8))
            break;
        chars = profile_utf8_chars(p, len);
        if (chars < 0)
            return "subject UTF8String is not valid UTF-8 or has a control character";
        goto length;
    case V_ASN1_IA5STRING:
        if (!(r->types & IA5))
            break;
        if (r->nid == NID_domainComponent ? !profile_dc_valid(p, len)
                                          : !profile_mailbox_valid(p, len))
            return r->nid == NID_domainComponent
                       ? "subject domainComponent is not a DNS label (RFC 4519 2.4)"
                       : "subject emailAddress is not a plain ASCII mail address";
        chars = len;
        goto length;
    default:
        break;
    }
    switch (r->types) {
    case PS:
        return "subject countryName and serialNumber must be PrintableString (RFC 5280 A.1)";
    case IA5:
        return "subject domainComponent and emailAddress must be IA5String";
    default:
        return "subject attribute must be PrintableString or UTF8String (RFC 5280 4.1.2.6)";
    }
length:
    if (chars > r->max)
        return "subject attribute longer than its upper bound (RFC 5280 A.1: CN, O, OU 64, L, ST "
               "128)";
    if (r->nid == NID_countryName && !profile_country_valid(p, len))
        return "subject countryName is not an ISO 3166-1 alpha-2 code (CA/B BR 7.1.4.2.2)";
    return NULL;
}

/* RFC 5280 4.1.2.4-4.1.2.6 and CA/B BR 7.1.4 on the subject as re-encoded by
 * csr_parse: allowed attributes, their string types and contents, one value
 * per RDN, at most one of each attribute but OU and DC. */
static const char *profile_check_subject(const X509_NAME *name)
{
    int n = X509_NAME_entry_count(name);
    unsigned seen = 0;

    for (int i = 0; i < n; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        const struct subject_rule *r =
            profile_subject_rule(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)));
        unsigned bit;
        const char *why;
        if (r == NULL)
            return "subject attribute not allowed by the profile";
        if (i > 0 &&
            X509_NAME_ENTRY_set(e) == X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i - 1)))
            return "subject has a multi-valued RDN (one attribute per RDN is allowed)";
        bit = 1u << (r - subject_rules);
        if ((seen & bit) && !r->repeatable)
            return r->nid == NID_commonName ? "subject has more than one commonName"
                                            : "subject attribute appears more than once";
        seen |= bit;
        why = profile_check_value(r, X509_NAME_ENTRY_get_data(e));
        if (why != NULL)
            return why;
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

/* An absolute URI as RFC 3986 3.1 starts: a scheme of a letter then letters,
 * digits, + - . and a ':'; visible ASCII throughout. */
static int profile_uri_valid(const ASN1_IA5STRING *s)
{
    const unsigned char *p = ASN1_STRING_get0_data(s);
    int len = ASN1_STRING_length(s), colon = -1;

    for (int i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return 0;
        if (colon < 0 && p[i] == ':')
            colon = i;
    }
    if (colon < 1 || colon == len - 1 ||
        !((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')))
        return 0;
    for (int i = 1; i < colon; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
              (p[i] >= '0' && p[i] <= '9') || p[i] == '+' || p[i] == '-' || p[i] == '.'))
            return 0;
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
            if (ASN1_STRING_length(g->d.ia5) > 255 ||
                !profile_mailbox_valid(ASN1_STRING_get0_data(g->d.ia5),
                                       ASN1_STRING_length(g->d.ia5)))
                return "subjectAltName rfc822Name is not a plain ASCII mail address "
                       "(RFC 5280 4.2.1.6)";
            break;
        case GEN_URI:
            if (ASN1_STRING_length(g->d.ia5) > 255 || !profile_uri_valid(g->d.ia5))
                return "subjectAltName URI is not an absolute URI of visible ASCII "
                       "(RFC 5280 4.2.1.6)";
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
    enum kp_err rc;

    if (csr->key_type < 0 || !(label->key_types & (1u << csr->key_type))) {
        *why = "public key type or size not allowed for this label";
        return KP_ERR_KEY_TYPE;
    }
    /* the request's own key, also under serverkeygen: it signed the request */
    rc = csr_check_key(csr, why);
    if (rc == KP_OK)
        rc = csr_check_signature_alg(csr, why);
    if (rc != KP_OK)
        return rc;
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
    t->not_before = now - PROFILE_BACKDATE;
    /* validity counts both ends (RFC 5280 4.1.2.5), so a day-count ends 1 s early */
    t->not_after = t->not_before + (time_t)days * 86400 - 1;
    if (t->not_after > ca_end)
        t->not_after = ca_end;
    t->ekus = label->ekus;
    *why = NULL;
    return KP_OK;
}
