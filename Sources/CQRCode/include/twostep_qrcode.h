// SPDX-License-Identifier: Apache-2.0
#ifndef TWOSTEP_QRCODE_H
#define TWOSTEP_QRCODE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (0 is success). */
#define TWOSTEP_QR_OK 0
#define TWOSTEP_QR_EINVAL 1   /* NULL argument, empty text, or scale/margin out of range */
#define TWOSTEP_QR_EENCODE 2  /* libqrencode failed (e.g. text too long for any QR version) */
#define TWOSTEP_QR_ENOMEM 3   /* allocation failed */
#define TWOSTEP_QR_EPNG 4     /* libpng reported an error */

/* Limits for twostep_qr_png. */
#define TWOSTEP_QR_MAX_SCALE 64
#define TWOSTEP_QR_MAX_MARGIN 64

/* Encodes text (8-bit mode, error correction level M) to a square matrix. Returns 0 on
   success; *width gets the number of modules per side and *modules gets width*width bytes,
   row by row (1 = dark, 0 = light). The caller frees *modules with twostep_qr_free. */
int twostep_qr_matrix(const char *text, int *width, unsigned char **modules);

/* Encodes text as a PNG (1-bit grayscale): `scale` pixels per module (1..64), `margin`
   modules of light quiet zone on each side (0..64). *png is malloc'd; free it with
   twostep_qr_free. Returns 0 on success, nonzero on any error; never aborts. */
int twostep_qr_png(const char *text, int scale, int margin, unsigned char **png, size_t *png_len);

/* Frees memory returned by the functions above. NULL is allowed. */
void twostep_qr_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
