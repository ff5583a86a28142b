#ifndef CSILOCRYPTO_H
#define CSILOCRYPTO_H
#include <stddef.h>
#include <stdint.h>

/// An incremental SHA-256 computation; opaque to callers.
typedef struct silo_sha256_ctx silo_sha256_ctx;

/// Creates a context ready to hash; returns NULL if OpenSSL cannot provide SHA-256.
silo_sha256_ctx *silo_sha256_new(void);
/// Restarts the context so it can hash a new message without a new allocation.
int silo_sha256_reset(silo_sha256_ctx *ctx);
int silo_sha256_update(silo_sha256_ctx *ctx, const void *data, size_t count);
/// Writes the 32-byte digest into `out` and leaves the context needing a reset.
int silo_sha256_final(silo_sha256_ctx *ctx, uint8_t out[32]);
void silo_sha256_free(silo_sha256_ctx *ctx);

#endif
