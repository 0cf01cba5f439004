/* Certificate policy: turns a verified CSR and a label's profile into a
 * certificate template, or a policy error. The CA/B Forum BR validity
 * schedule lives here. */
#ifndef KP_PROFILE_H
#define KP_PROFILE_H

#include <time.h>

#include "ca/ca.h"
#include "core/config.h"
#include "core/err.h"
#include "pki/csr.h"

/* The longest validity in days the CA/B Forum BR allow for a certificate
 * issued at `now` (398 before 2026-03-15, 200 before 2027-03-15, 100 before
 * 2029-03-15, then 47). */
long profile_br_max_days(time_t now);

/* Check the CSR against the label (key type, subject, SAN count and types) and
 * fill *t (borrowing from csr and ca). Validity: min(label max, BR max),
 * never past the CA's notAfter. KP_ERR_KEY_TYPE or KP_ERR_POLICY on refusal;
 * *why (static string) says which rule. */
enum kp_err profile_apply(const struct label_cfg *label, const struct ca *ca, const struct csr *csr,
                          time_t now, struct ca_template *t, const char **why);

#endif
