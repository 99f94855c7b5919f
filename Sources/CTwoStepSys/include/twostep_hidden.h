// SPDX-License-Identifier: Apache-2.0
#pragma once
/* Hidden terminal input (a password or code typed without echo) that a signal cannot leave
   hidden: while it lasts, SIGINT, SIGTERM, SIGHUP and SIGQUIT restore the terminal before
   they take their usual effect (their previous action, usually ending the process), and
   SIGTSTP (Ctrl-Z) restores it before the process stops and hides the input again when the
   process continues. Without this a Ctrl-C at `Password:` left the shell with echo off
   (bash repairs that itself; dash, scripts and other callers do not). */

/* Turns echo off on terminal `fd` and installs the handlers. 0, or -1 with errno (not a
   terminal: nothing changed). */
int twostep_hidden_begin(int fd);
/* Puts the terminal back as it was and the signals' previous actions back. */
void twostep_hidden_end(void);
