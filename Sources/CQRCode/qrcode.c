// SPDX-License-Identifier: Apache-2.0
/* QR codes for enrollment: libqrencode builds the matrix, libpng writes the image into memory. */
#include "twostep_qrcode.h"

#include <png.h>
#include <qrencode.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int twostep_qr_matrix(const char *text, int *width, unsigned char **modules)
{
    if (text == NULL || width == NULL || modules == NULL || text[0] == '\0')
        return TWOSTEP_QR_EINVAL;
    *width = 0;
    *modules = NULL;

    QRcode *code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);
    if (code == NULL)
        return TWOSTEP_QR_EENCODE;

    size_t n = (size_t)code->width * (size_t)code->width;
    unsigned char *out = malloc(n);
    if (out == NULL) {
        QRcode_free(code);
        return TWOSTEP_QR_ENOMEM;
    }
    /* Bit 0 of each libqrencode byte is the module's colour (1 = dark). */
    for (size_t i = 0; i < n; i++)
        out[i] = code->data[i] & 1;
    *width = code->width;
    *modules = out;
    QRcode_free(code);
    return TWOSTEP_QR_OK;
}

struct png_buffer {
    unsigned char *data;
    size_t len;
    size_t cap;
    int failed;
};

static void buffer_write(png_structp png_ptr, png_bytep data, png_size_t length)
{
    struct png_buffer *buf = png_get_io_ptr(png_ptr);
    if (length > SIZE_MAX - buf->len) {
        buf->failed = 1;
        png_error(png_ptr, "PNG too large");
    }
    if (buf->len + length > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        while (cap < buf->len + length) {
            if (cap > SIZE_MAX / 2) {
                buf->failed = 1;
                png_error(png_ptr, "PNG too large");
            }
            cap *= 2;
        }
        unsigned char *grown = realloc(buf->data, cap);
        if (grown == NULL) {
            buf->failed = 1;
            png_error(png_ptr, "out of memory");
        }
        buf->data = grown;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, length);
    buf->len += length;
}

static void buffer_flush(png_structp png_ptr)
{
    (void)png_ptr;
}

/* libpng's default error handler prints to stderr; the helper's stderr is not the user's. */
static void quiet_error(png_structp png_ptr, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png_ptr, 1);
}

static void quiet_warning(png_structp png_ptr, png_const_charp msg)
{
    (void)png_ptr;
    (void)msg;
}

int twostep_qr_png(const char *text, int scale, int margin, unsigned char **png, size_t *png_len)
{
    if (png == NULL || png_len == NULL)
        return TWOSTEP_QR_EINVAL;
    *png = NULL;
    *png_len = 0;
    if (scale < 1 || scale > TWOSTEP_QR_MAX_SCALE || margin < 0 || margin > TWOSTEP_QR_MAX_MARGIN)
        return TWOSTEP_QR_EINVAL;

    int width = 0;
    unsigned char *modules = NULL;
    int rc = twostep_qr_matrix(text, &width, &modules);
    if (rc != TWOSTEP_QR_OK)
        return rc;

    /* Largest QR is 177 modules: (177 + 128) * 64 pixels fits comfortably in an int. */
    int side = (width + 2 * margin) * scale;
    size_t row_bytes = ((size_t)side + 7) / 8;

    /* Local variables read after a longjmp are all set before setjmp and never changed
       afterwards; the output buffer's state is on the heap, not in this frame. */
    struct png_buffer *buf = calloc(1, sizeof *buf);
    unsigned char *row = malloc(row_bytes);
    png_structp png_ptr = NULL;
    png_infop info_ptr = NULL;
    if (buf == NULL || row == NULL) {
        free(buf);
        free(row);
        free(modules);
        return TWOSTEP_QR_ENOMEM;
    }

    png_ptr = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, quiet_error, quiet_warning);
    if (png_ptr == NULL) {
        free(buf);
        free(row);
        free(modules);
        return TWOSTEP_QR_ENOMEM;
    }
    info_ptr = png_create_info_struct(png_ptr);
    if (info_ptr == NULL) {
        png_destroy_write_struct(&png_ptr, NULL);
        free(buf);
        free(row);
        free(modules);
        return TWOSTEP_QR_ENOMEM;
    }

    if (setjmp(png_jmpbuf(png_ptr))) {
        int failed_alloc = buf->failed;
        png_destroy_write_struct(&png_ptr, &info_ptr);
        free(buf->data);
        free(buf);
        free(row);
        free(modules);
        return failed_alloc ? TWOSTEP_QR_ENOMEM : TWOSTEP_QR_EPNG;
    }

    png_set_write_fn(png_ptr, buf, buffer_write, buffer_flush);
    png_set_IHDR(png_ptr, info_ptr, (png_uint_32)side, (png_uint_32)side, 1, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png_ptr, info_ptr);

    /* In 1-bit grayscale a set bit is white: light modules and the quiet zone are 1s. */
    for (int y = 0; y < side; y++) {
        int my = y / scale - margin;
        memset(row, 0xff, row_bytes);
        if (my >= 0 && my < width) {
            for (int x = 0; x < side; x++) {
                int mx = x / scale - margin;
                if (mx >= 0 && mx < width && modules[(size_t)my * (size_t)width + (size_t)mx])
                    row[x / 8] &= (unsigned char)~(0x80u >> (x % 8));
            }
        }
        png_write_row(png_ptr, row);
    }
    png_write_end(png_ptr, NULL);
    png_destroy_write_struct(&png_ptr, &info_ptr);
    free(row);
    free(modules);

    *png = buf->data;
    *png_len = buf->len;
    free(buf);
    return TWOSTEP_QR_OK;
}

void twostep_qr_free(void *p)
{
    free(p);
}
