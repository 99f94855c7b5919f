// SPDX-License-Identifier: Apache-2.0
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/sha.h>

/* For a process that does one login and exits (twostep-verify; see Crypto.startForOneLogin):
   OpenSSL started without reading openssl.cnf, without filling the legacy name tables with
   every cipher and digest, without error strings, and without the exit-time cleanup. */
static inline int twostep_openssl_init_one_login(void) {
    return OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS
                               | OPENSSL_INIT_NO_ADD_ALL_DIGESTS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS
                               | OPENSSL_INIT_NO_ATEXIT, NULL);
}

/* libcrypto's built-in EVP_CIPHER and EVP_MD tables (crypto/evp/e_aes.c, legacy_sha.c, kept
   for engines), for the same one-login process: a copy made with EVP_*_meth_dup is used
   directly by EVP_*Init_ex and HMAC_Init_ex, with no provider fetch. OpenSSL 3.0's first
   fetch builds its name tables and constructs every algorithm of the kind fetched (every
   cipher of the default provider: about 1 ms here). The code run is the default provider's
   own (the same AES-NI/VPAES, CLMUL and SHA assembly). These functions are deprecated in
   OpenSSL 3, hence the pragma; Crypto.startForOneLogin checks them on known answers. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
static inline EVP_CIPHER *twostep_aes_256_gcm_builtin(void) {
    return EVP_CIPHER_meth_dup(EVP_aes_256_gcm());
}

/* bits: 1 (SHA-1), 256 or 512. The built-in digests carry no context size of their own
   (engines supplied it): set the one their update functions use. */
static inline EVP_MD *twostep_md_builtin(int bits) {
    const EVP_MD *md = bits == 1 ? EVP_sha1() : bits == 256 ? EVP_sha256() : bits == 512 ? EVP_sha512() : NULL;
    int size = bits == 1 ? (int)sizeof(SHA_CTX) : bits == 256 ? (int)sizeof(SHA256_CTX) : (int)sizeof(SHA512_CTX);
    EVP_MD *copy = md == NULL ? NULL : EVP_MD_meth_dup(md);
    if (copy != NULL && EVP_MD_meth_set_app_datasize(copy, size) != 1) {
        EVP_MD_meth_free(copy);
        copy = NULL;
    }
    return copy;
}

/* HMAC over a built-in digest (HMAC_CTX: EVP_MAC would fetch). out holds EVP_MAX_MD_SIZE. */
static inline int twostep_hmac_builtin(const EVP_MD *md, const unsigned char *key, int keylen,
                                       const unsigned char *msg, size_t len,
                                       unsigned char *out, unsigned int *outlen) {
    HMAC_CTX *ctx = HMAC_CTX_new();
    if (ctx == NULL) return 0;
    int ok = HMAC_Init_ex(ctx, key, keylen, md, NULL) == 1 && HMAC_Update(ctx, msg, len) == 1
        && HMAC_Final(ctx, out, outlen) == 1;
    HMAC_CTX_free(ctx);  /* cleanses the key pads and digest states */
    return ok;
}
#pragma clang diagnostic pop
