/*===- c_api_test.c - swan.h compiled as C, used as a C program would ------===*
 *
 * Compiled as C11 with warnings as errors, so it proves the header is C. It
 * runs a cache the way an outside program would and checks the one answer a
 * C program can compute on its own: with k = D and f32 storage, decode
 * attention equals plain softmax attention on the original keys and values.
 *
 *===----------------------------------------------------------------------===*/

#include "swan/swan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { D = 32, H = 2, G = 3, TOKENS = 23, BUFFER = 5 };

static uint64_t state = 0x5eed;

/* Uniform in (-1, 1); enough for random inputs. */
static double uniform(void) {
  state = state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(state >> 11) / 4503599627370496.0 - 1.0;
}

/* A random orthogonal matrix by Gram-Schmidt, done twice for accuracy. */
static void orthogonal(float *out) {
  double m[D][D];
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < D; ++j)
      m[i][j] = uniform();
  for (int i = 0; i < D; ++i)
    for (int pass = 0; pass < 2; ++pass) {
      for (int j = 0; j < i; ++j) {
        double dot = 0;
        for (int t = 0; t < D; ++t)
          dot += m[i][t] * m[j][t];
        for (int t = 0; t < D; ++t)
          m[i][t] -= dot * m[j][t];
      }
      double norm = 0;
      for (int t = 0; t < D; ++t)
        norm += m[i][t] * m[i][t];
      for (int t = 0; t < D; ++t)
        m[i][t] /= sqrt(norm);
    }
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < D; ++j)
      out[i * D + j] = (float)m[i][j];
}

static int failures = 0;

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "FAILED: %s (%s)\n", what, swan_last_error());
    ++failures;
  }
}

int main(void) {
  static float rot_k[H * D * D], rot_v[H * D * D];
  static float keys[TOKENS * H * D], values[TOKENS * H * D];
  static float q[H * G * D], out[H * G * D];
  for (int h = 0; h < H; ++h) {
    orthogonal(rot_k + h * D * D);
    orthogonal(rot_v + h * D * D);
  }
  for (int i = 0; i < TOKENS * H * D; ++i) {
    keys[i] = (float)uniform();
    values[i] = (float)uniform();
  }
  for (int i = 0; i < H * G * D; ++i) {
    q[i] = (float)(3.0 * uniform());
    out[i] = NAN;
  }

  swan_cache_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.head_dim = D;
  cfg.num_kv_heads = H;
  cfg.group_size = G;
  cfg.buffer_tokens = BUFFER;
  cfg.max_sequences = 2;
  cfg.k_key = D;
  cfg.k_value = D;
  cfg.dtype = SWAN_DTYPE_F32;
  cfg.device = SWAN_DEVICE_CPU;

  swan_cache *cache = NULL;
  check(swan_cache_create(&cfg, rot_k, rot_v, &cache) == SWAN_OK, "create");
  if (!cache)
    return 1;
  /* A prompt, then decode steps one token at a time. */
  check(swan_cache_append(cache, 1, TOKENS - 3, keys, values) == SWAN_OK,
        "prefill");
  for (int t = TOKENS - 3; t < TOKENS; ++t)
    check(swan_cache_append(cache, 1, 1, keys + t * H * D,
                            values + t * H * D) == SWAN_OK,
          "decode append");
  check(swan_cache_tokens(cache, 1) == TOKENS, "token count");
  check(swan_cache_bytes(cache) > 0, "bytes");
  check(swan_cache_break_even_tokens(cache) == INT64_MAX,
        "with k = D SWAN never does less arithmetic than dense");
  check(swan_cache_break_even_tokens(NULL) == -1, "break-even of NULL");

  int32_t seq = 1;
  float scale = 1.0f / sqrtf((float)D);
  check(swan_cache_attention(cache, 1, &seq, q, scale, out) == SWAN_OK,
        "attention");

  double worst = 0;
  for (int j = 0; j < H * G; ++j) {
    int h = j / G; /* query head j reads KV head j / G */
    double logits[TOKENS], top = -INFINITY, sum = 0;
    for (int t = 0; t < TOKENS; ++t) {
      double dot = 0;
      for (int i = 0; i < D; ++i)
        dot += (double)q[j * D + i] * keys[(t * H + h) * D + i];
      logits[t] = scale * dot;
      if (logits[t] > top)
        top = logits[t];
    }
    for (int t = 0; t < TOKENS; ++t)
      sum += (logits[t] = exp(logits[t] - top));
    double diff = 0, norm = 0;
    for (int i = 0; i < D; ++i) {
      double want = 0;
      for (int t = 0; t < TOKENS; ++t)
        want += logits[t] / sum * values[(t * H + h) * D + i];
      diff += (out[j * D + i] - want) * (out[j * D + i] - want);
      norm += want * want;
    }
    if (sqrt(diff / norm) > worst || isnan(diff))
      worst = isnan(diff) ? INFINITY : sqrt(diff / norm);
  }
  check(worst <= 1e-5, "attention equals dense attention with k = D");

  /* An error leaves a message naming the argument. */
  check(swan_cache_set_k(cache, 0, 4) == SWAN_ERR_INVALID_ARGUMENT,
        "k_key = 0 is rejected");
  check(strstr(swan_last_error(), "k_key") != NULL, "message names k_key");
  /* Without a GPU, a CUDA cache is refused with a reason. */
  cfg.device = SWAN_DEVICE_CUDA;
  swan_cache *none = NULL;
  swan_status cuda = swan_cache_create(&cfg, rot_k, rot_v, &none);
  check(cuda == SWAN_OK || cuda == SWAN_ERR_UNSUPPORTED,
        "CUDA is created or reported unsupported");
  if (cuda == SWAN_OK)
    swan_cache_destroy(none);
  else
    check(strstr(swan_last_error(), "CUDA") != NULL, "the message says why");
  none = NULL;
  cfg.device = SWAN_DEVICE_CPU;
  cfg.value_encoding = (swan_value_encoding)(SWAN_ENCODING_MASK + 1);
  check(swan_cache_create(&cfg, rot_k, rot_v, &none) ==
            SWAN_ERR_INVALID_ARGUMENT,
        "an unknown value_encoding is rejected");
  check(strstr(swan_last_error(), "value_encoding") != NULL,
        "message names value_encoding");
  cfg.value_encoding = SWAN_ENCODING_AUTO;
  cfg.key_encoding = (swan_value_encoding)(SWAN_ENCODING_MASK + 1);
  check(swan_cache_create(&cfg, rot_k, rot_v, &none) ==
            SWAN_ERR_INVALID_ARGUMENT,
        "an unknown key_encoding is rejected");
  check(strstr(swan_last_error(), "key_encoding") != NULL,
        "message names key_encoding");

  check(swan_cache_release(cache, 1) == SWAN_OK, "release");
  check(swan_cache_bytes(cache) == 0, "release returns every byte");
  swan_cache_destroy(cache);

  printf("c_api_test: relative error %.3g, %d failure(s)\n", worst, failures);
  return failures ? 1 : 0;
}
