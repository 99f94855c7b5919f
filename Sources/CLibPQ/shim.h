// SPDX-License-Identifier: Apache-2.0
/* libpq from Debian's libpq-dev (PostgreSQL's C client), for TwoStepPostgres only:
 * never the PAM module's target. */
#include <postgresql/libpq-fe.h>
