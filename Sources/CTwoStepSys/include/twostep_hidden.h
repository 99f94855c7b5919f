// SPDX-License-Identifier: Apache-2.0
#pragma once
/* Hidden terminal input (a password or code typed without echo) that a signal cannot leave
   hidden: while it lasts, SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGTSTP (Ctrl-Z) restore the
   terminal before they take their previous action (usually: end the process, or stop it);
   if the process lives on (continued, or a handler of its own ran), the input is hidden
   again. A signal the process ignores stays ignored and changes nothing. Without this a Ctrl-C at `Password:` left the shell with echo off
   (bash repairs that itself; dash, scripts and other callers do not). */

/* Turns echo off on terminal `fd` and installs the handlers. 0, or -1 with errno (not a
   terminal: nothing changed). */
int twostep_hidden_begin(int fd);
/* Puts the terminal back as it was and the signals' previous actions back. */
void twostep_hidden_end(void);
