#include "CSiloCrypto.h"
#include <openssl/evp.h>

struct silo_sha256_ctx {
    EVP_MD_CTX *md;
};

// Fetched once: an implicit fetch on every EVP_DigestInit costs a lock and a lookup.
static EVP_MD *silo_sha256_md(void) {
    static EVP_MD *md = NULL;
    if (__atomic_load_n(&md, __ATOMIC_ACQUIRE) == NULL) {
        EVP_MD *fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
        EVP_MD *expected = NULL;
        if (fetched != NULL && !__atomic_compare_exchange_n(&md, &expected, fetched, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            EVP_MD_free(fetched);
        }
    }
    return __atomic_load_n(&md, __ATOMIC_ACQUIRE);
}

silo_sha256_ctx *silo_sha256_new(void) {
    EVP_MD *md = silo_sha256_md();
    if (md == NULL) return NULL;
    silo_sha256_ctx *ctx = OPENSSL_zalloc(sizeof(*ctx));
    if (ctx == NULL) return NULL;
    ctx->md = EVP_MD_CTX_new();
    if (ctx->md == NULL || EVP_DigestInit_ex(ctx->md, md, NULL) != 1) {
        silo_sha256_free(ctx);
        return NULL;
    }
    return ctx;
}

int silo_sha256_reset(silo_sha256_ctx *ctx) {
    return EVP_DigestInit_ex(ctx->md, silo_sha256_md(), NULL) == 1 ? 0 : -1;
}

int silo_sha256_update(silo_sha256_ctx *ctx, const void *data, size_t count) {
    return EVP_DigestUpdate(ctx->md, data, count) == 1 ? 0 : -1;
}

int silo_sha256_final(silo_sha256_ctx *ctx, uint8_t out[32]) {
    unsigned int length = 0;
    return EVP_DigestFinal_ex(ctx->md, out, &length) == 1 && length == 32 ? 0 : -1;
}

void silo_sha256_free(silo_sha256_ctx *ctx) {
    if (ctx == NULL) return;
    EVP_MD_CTX_free(ctx->md);
    OPENSSL_free(ctx);
}
