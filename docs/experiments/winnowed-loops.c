//===- winnowed-loops.c - the sparse inner loops, hand-written ------------===//
//
// The two inner loops of winnowed decode attention for one KV head, written
// by hand with AVX2 intrinsics, over L tokens of k = 32 kept f16 values
// (G = 4, D = 128), to set the generated kernel against: the key scores
// s[t][:] = sum_j v_j q[idx_j][:], and the value accumulation
// acc[idx_j][:] += v_j p[t][:] in the cache's token-major layout and in a
// dimension-major one (per 256-token page and dimension, the tokens that kept
// it, padded to four entries). docs/PERFORMANCE.md has the figures.
//
//   clang-22 -O3 -march=native winnowed-loops.c -o winnowed-loops
//
//===----------------------------------------------------------------------===//

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
enum { L = 32768, K = 32, D = 128, G = 4, P = 256 };
static _Float16 val[L * K], dval[2 * L * K];
static uint8_t idx[L * K], dtok[2 * L * K];
static int start[L / P][D + 1];
static float w[L * G];
float acc[D * G];
static void tokenMajor(void) {
  for (int t = 0; t < L; ++t) {
    __m128 p = _mm_loadu_ps(w + t * G);
    float v[K];
    for (int j = 0; j < K; j += 8)
      _mm256_storeu_ps(
          v + j, _mm256_cvtph_ps(_mm_loadu_si128((void *)(val + t * K + j))));
    for (int j = 0; j < K; ++j) {
      float *a = acc + idx[t * K + j] * G;
      _mm_storeu_ps(a, _mm_fmadd_ps(_mm_set1_ps(v[j]), p, _mm_loadu_ps(a)));
    }
  }
}
static float q[D * G];
float score[L * G];      // not static: read by nobody, kept all the same
static void keys(void) { // s[t][:] = sum_j v_j * q[idx_j][:], four chains
  for (int t = 0; t < L; ++t) {
    float v[K];
    for (int j = 0; j < K; j += 8)
      _mm256_storeu_ps(
          v + j, _mm256_cvtph_ps(_mm_loadu_si128((void *)(val + t * K + j))));
    __m128 s[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(),
                   _mm_setzero_ps()};
    for (int j = 0; j < K; ++j)
      s[j % 4] = _mm_fmadd_ps(_mm_set1_ps(v[j]),
                              _mm_loadu_ps(q + idx[t * K + j] * G), s[j % 4]);
    _mm_storeu_ps(score + t * G,
                  _mm_add_ps(_mm_add_ps(s[0], s[1]), _mm_add_ps(s[2], s[3])));
  }
}
static void dimensionMajor(void) {
  for (int pg = 0; pg < L / P; ++pg)
    for (int d = 0; d < D; ++d) {
      __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
      for (int e = start[pg][d]; e < start[pg][d + 1]; e += 4) {
        __m256 v = _mm256_cvtph_ps(_mm_set1_epi64x(*(int64_t *)(dval + e)));
        const float *wp = w + pg * P * G;
        __m256 r0 = _mm256_loadu2_m128(wp + dtok[e + 1] * G, wp + dtok[e] * G);
        __m256 r1 =
            _mm256_loadu2_m128(wp + dtok[e + 3] * G, wp + dtok[e + 2] * G);
        a = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(
                                v, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1)),
                            r0, a);
        b = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(
                                v, _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3)),
                            r1, b);
      }
      __m256 s = _mm256_add_ps(a, b);
      __m128 r =
          _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
      _mm_storeu_ps(acc + d * G, _mm_add_ps(r, _mm_loadu_ps(acc + d * G)));
    }
}
static double best(void (*f)(void)) {
  double b = 1e9;
  for (int i = 0; i < 200; ++i) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    f();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    b = s < b ? s : b;
  }
  return b * 1e9 / L;
}
int main(void) {
  for (int i = 0; i < L * G; ++i)
    w[i] = rand() % 1000 / 1000.0f;
  for (int i = 0; i < D * G; ++i)
    q[i] = rand() % 1000 / 1000.0f;
  for (int t = 0; t < L; ++t)
    for (int j = 0, d = 0; d < D; ++d) // a uniform k-subset, ascending
      if (rand() % (D - d) < K - j) {
        idx[t * K + j] = d;
        val[t * K + j++] = rand() % 1000 / 1000.0f;
      }
  for (int pg = 0, n = 0; pg < L / P; ++pg)
    for (int d = 0; d <= D; ++d) {
      start[pg][d] = n;
      for (int t = pg * P; d < D && t < (pg + 1) * P; ++t)
        for (int j = 0; j < K; ++j)
          if (idx[t * K + j] == d) {
            dtok[n] = t - pg * P;
            dval[n++] = val[t * K + j];
          }
      while (d < D && n % 4) {
        dtok[n] = 0;
        dval[n++] = 0;
      }
    }
  double k = best(keys), a = best(tokenMajor), b = best(dimensionMajor);
  printf("fastest of 200, ns per token: keys %.1f; values token-major %.1f, "
         "dimension-major %.1f\n",
         k, a, b);
}
