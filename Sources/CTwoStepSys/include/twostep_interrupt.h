// SPDX-License-Identifier: Apache-2.0
#pragma once
/* Ctrl-C for long admin work (import --batch, rotate-key): SIGINT and SIGTERM set a flag
   instead of killing the process, so the loop finishes the record in hand, says what was
   done and exits non-zero. Nothing else happens in the handler (async-signal-safe). */

/* Installs the handler for SIGINT and SIGTERM (SA_RESTART). Returns 0 or -1 with errno. */
int twostep_interrupt_catch(void);
/* The signal that arrived since twostep_interrupt_catch (SIGINT or SIGTERM), or 0. */
int twostep_interrupt_pending(void);
