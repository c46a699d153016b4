/* A SWAN cache from C: prefill, decode, lower k at run time.
 * Build: cc -std=c11 cache.c -I runtime/include -L build/lib -lswan -lm */
#include "swan/swan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { D = 128, H = 8, G = 4, PROMPT = 2000, STEPS = 100 };

static int ok(swan_status s) {
  if (s != SWAN_OK)
    fprintf(stderr, "swan: %s\n", swan_last_error());
  return s == SWAN_OK;
}

int main(void) {
  /* Any orthogonal R works; a calibrated one (swan-calibrate) works best.
   * Here: the normalised Hadamard matrix, the same for every head. */
  float *rot = malloc(sizeof(float) * H * D * D);
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < D; ++i)
      for (int j = 0; j < D; ++j)
        rot[(h * D + i) * D + j] =
            (__builtin_popcount(i & j) % 2 ? -1.0f : 1.0f) / sqrtf(D);

  swan_cache_config cfg = {
      .head_dim = D, .num_kv_heads = H, .group_size = G,
      .buffer_tokens = 128, .max_sequences = 4, .k_key = 64, .k_value = 64,
      .dtype = SWAN_DTYPE_F16, .device = SWAN_DEVICE_CPU};
  swan_cache *cache;
  if (!ok(swan_cache_create(&cfg, rot, rot, &cache)))
    return 1;

  /* Keys and values [tokens][H][D]; a real engine passes its projections. */
  int n = PROMPT + STEPS;
  float *k = malloc(sizeof(float) * n * H * D);
  float *v = malloc(sizeof(float) * n * H * D);
  for (long i = 0; i < (long)n * H * D; ++i) {
    k[i] = sinf(0.37f * i) + 0.1f * cosf(0.011f * i);
    v[i] = cosf(0.23f * i);
  }
  float q[H * G * D], out[H * G * D];
  for (int i = 0; i < H * G * D; ++i)
    q[i] = sinf(0.05f * i);

  int32_t seq = 0;
  if (!ok(swan_cache_append(cache, seq, PROMPT, k, v))) /* prefill */
    return 1;
  for (int t = PROMPT; t < n; ++t) { /* decode */
    if (t == PROMPT + STEPS / 2 && !ok(swan_cache_set_k(cache, 32, 32)))
      return 1;
    if (!ok(swan_cache_append(cache, seq, 1, k + (long)t * H * D,
                              v + (long)t * H * D)) ||
        !ok(swan_cache_attention(cache, 1, &seq, q, 1.0f / sqrtf(D), out)))
      return 1;
  }
  size_t dense = (size_t)n * H * D * 2 * 2; /* fp16 K and V */
  printf("tokens %lld, bytes %zu (dense fp16 %zu)\n",
         (long long)swan_cache_tokens(cache, seq), swan_cache_bytes(cache),
         dense);
  if (!ok(swan_cache_rewinnow(cache, 32, 32)))
    return 1;
  printf("after rewinnow to k = 32: bytes %zu, %.1f%% saved\n",
         swan_cache_bytes(cache),
         100.0 * (1.0 - (double)swan_cache_bytes(cache) / dense));
  printf("out[0] = %.4f\n", out[0]);

  /* Errors are statuses with a message naming the argument. */
  if (swan_cache_set_k(cache, 0, 32) == SWAN_ERR_INVALID_ARGUMENT)
    printf("set_k(0, 32): %s\n", swan_last_error());

  swan_cache_destroy(cache);
  free(rot);
  free(k);
  free(v);
  return 0;
}
