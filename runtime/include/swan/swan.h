/*===- swan.h - C API of the SWAN KV cache -------------------------*- C -*-===*
 *
 * The KV cache of one attention layer, as a serving engine embeds it: up to
 * max_sequences sequences of independent lengths, num_kv_heads KV heads of
 * head_dim dimensions, group_size query heads per KV head (GQA; query head j
 * reads KV head j / group_size). Keys arrive post-RoPE and unrotated; the
 * cache rotates them by R_K, keeps the newest buffer_tokens tokens dense in a
 * FIFO buffer and winnows older ones to their k_key / k_value largest rotated
 * components, which attention then uses directly.
 *
 * Link with -lswan. Every call that fails returns a status other than SWAN_OK,
 * leaves the cache exactly as it was, and sets swan_last_error() to a message
 * that names the argument at fault. Different caches are independent. On one
 * cache, a call that changes it (append, set_k, rewinnow, release, destroy)
 * must not overlap any other call on it; swan_cache_attention,
 * swan_cache_tokens, swan_cache_bytes and swan_cache_break_even_tokens only
 * read it and may run at the same time from several threads.
 *
 *===----------------------------------------------------------------------===*/

#ifndef SWAN_SWAN_H
#define SWAN_SWAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SWAN_OK = 0,
  SWAN_ERR_INVALID_ARGUMENT,
  SWAN_ERR_OUT_OF_MEMORY,
  SWAN_ERR_UNSUPPORTED,
  SWAN_ERR_INTERNAL
} swan_status;

/* Element type of the stored keys and values (queries and outputs are f32). */
typedef enum { SWAN_DTYPE_F32 = 0, SWAN_DTYPE_F16 = 1 } swan_dtype;

/* Where the tokens live and the kernels run. SWAN_DEVICE_CUDA keeps them in
 * GPU memory (GPU 0; the driver, libcuda.so.1 or the library the
 * SWAN_CUDA_DRIVER environment variable names, is opened when the cache is
 * created), for head_dim 64, 128 or 256 and group_size 1, 4 or 8. Keys and
 * values share one encoding there: masks when either encoding is
 * SWAN_ENCODING_MASK (the other AUTO or MASK), else indices; INDICES with
 * MASK is SWAN_ERR_UNSUPPORTED. Without a driver or GPU, creation returns
 * SWAN_ERR_UNSUPPORTED saying why. One exception to "a failed call leaves
 * the cache as it was": a driver fault reported while an append is being
 * committed (its last device copies; the GPU context is broken by then)
 * loses that sequence, and every later call on it but release returns
 * SWAN_ERR_INTERNAL saying so. */
typedef enum { SWAN_DEVICE_CPU = 0, SWAN_DEVICE_CUDA = 1 } swan_device;

/* How winnowed values, and keys, record which components they kept (the one
 * enum serves value_encoding and key_encoding): k uint8 indices (3k bytes
 * per fp16 row) or a head_dim-bit occupancy mask (2k + head_dim/8 bytes).
 * For values AUTO picks, for each new page, the smaller at that page's
 * k_value: the mask when head_dim/8 < k_value (at head_dim = 128:
 * k_value > 16). For keys AUTO picks the mask only when it is smaller and
 * the expanded scores stay cheap: group_size * head_dim/8 <= k_key. A page
 * keeps its encodings when rewinnowed. */
typedef enum {
  SWAN_ENCODING_AUTO = 0,
  SWAN_ENCODING_INDICES = 1,
  SWAN_ENCODING_MASK = 2
} swan_value_encoding;

/* How winnowed rows store their kept values (the dense buffer always keeps
 * dtype). SWAN_WINNOWED_INT8 (SWAN-Q8) stores each kept value as int8
 * round(x / s), with one f32 scale s = max|x| / 127 per row (key or value,
 * token, KV head): k + 4 bytes of values per row instead of 2k (fp16) or 4k
 * (f32), with the same positions. Attention reads the int8 values directly;
 * rewinnowing keeps the largest stored ones, whose scale stays valid. CPU
 * only: SWAN_DEVICE_CUDA returns SWAN_ERR_UNSUPPORTED with it. */
typedef enum {
  SWAN_WINNOWED_AS_DTYPE = 0,
  SWAN_WINNOWED_INT8 = 1
} swan_winnowed_storage;

typedef struct swan_cache swan_cache;

typedef struct {
  int32_t head_dim;      /* D, 1..256 (indices are bytes)                    */
  int32_t num_kv_heads;  /* H                                                */
  int32_t group_size;    /* G: query heads per KV head                       */
  int32_t buffer_tokens; /* b >= 1: newest tokens kept dense                 */
  int32_t max_sequences; /* live sequences at once                           */
  int32_t k_key;         /* components kept per winnowed key, 1..D           */
  int32_t k_value;       /* components kept per winnowed value, 1..D         */
  swan_dtype dtype;
  swan_device device;
  int32_t values_prerotated; /* 1: values arrive as v·R_V (R_V folded in W_V) */
  int32_t output_rotated;    /* 1: attention returns o·R_V (R_Vᵀ folded in W_O) */
  int32_t page_tokens; /* tokens per sparse page; 0 selects the default 256 */
  swan_value_encoding value_encoding; /* 0 (AUTO): per page, the smaller  */
  swan_value_encoding key_encoding;   /* 0 (AUTO): masks when G·D/8 <= k_key */
  swan_winnowed_storage winnowed_storage; /* 0: as dtype; 1: int8 + scale */
} swan_cache_config;

/* Creates a cache. rot_k, rot_v: [H][D][D] row-major orthogonal matrices
 * (x' = x · R); both are copied. The CPU kernels for (D, G, dtype) are
 * compiled here, once per process; the CUDA ones were compiled with swan. */
swan_status swan_cache_create(const swan_cache_config *cfg, const float *rot_k,
                              const float *rot_v, swan_cache **out);

/* Appends n_tokens >= 0 tokens to sequence seq >= 0, creating the sequence if
 * it is new (n_tokens = 0 just creates it). keys, values: [n][H][D]. The
 * newest buffer_tokens tokens stay dense; older ones are winnowed with the
 * current k. A whole prompt appended at once is compressed in bulk. NaN or
 * Inf in keys or values, and a token whose rotated components do not fit the
 * storage type (above 65504 for fp16), are rejected with
 * SWAN_ERR_INVALID_ARGUMENT. */
swan_status swan_cache_append(swan_cache *c, int32_t seq, int32_t n_tokens,
                              const float *keys, const float *values);

/* Sets k for tokens winnowed from now on; stored tokens keep theirs. */
swan_status swan_cache_set_k(swan_cache *c, int32_t k_key, int32_t k_value);

/* As set_k, and lowers every stored winnowed token to at most the new k at
 * once (each keeps the largest of the components it stored), returning the
 * freed memory. Buffer tokens are untouched. */
swan_status swan_cache_rewinnow(swan_cache *c, int32_t k_key, int32_t k_value);

/* One decode query per listed sequence. q, out: [n_seqs][H*G][D]. Every
 * listed sequence must exist and hold at least one token. NaN or Inf in q is
 * rejected, and so is a query row whose logits could overflow f32
 * (max(1, |scale|) · |q| · the largest |k| appended above 2^124). Should the
 * output still not be finite (values summing beyond f32), the call returns
 * SWAN_ERR_INVALID_ARGUMENT and out is unspecified. */
swan_status swan_cache_attention(swan_cache *c, int32_t n_seqs,
                                 const int32_t *seqs, const float *q,
                                 float scale, float *out);

/* Frees a sequence and returns its memory; its id may be reused. */
swan_status swan_cache_release(swan_cache *c, int32_t seq);

/* Tokens held by a sequence (buffer and winnowed), -1 for an unknown one. */
int64_t swan_cache_tokens(const swan_cache *c, int32_t seq);

/* Bytes of token storage held: dense buffers, winnowed values, scales and
 * positions, exactly as allocated. 0 for a NULL cache. */
size_t swan_cache_bytes(const swan_cache *c);

/* The compute break-even length at the current k: a sequence holding fewer
 * tokens costs SWAN attention more arithmetic per decode step than dense
 * attention would. With k = (k_key + k_value) / 2 it is
 * ceil(D² / (D − k)) + buffer_tokens (docs/DESIGN.md §6: per query head dense
 * costs 2·L·D multiply-adds, SWAN D² for each of the two rotations plus
 * 2·b·D for the buffer plus (L − b)·(k_key + k_value)); INT64_MAX when
 * k_key = k_value = D; -1 for a NULL cache. It follows set_k and rewinnow.
 * The cache does not switch a short sequence to a dense path on its own:
 * keeping it dense would cost the memory the cache exists to save, the
 * buffer already keeps the newest buffer_tokens tokens dense, and decode
 * attention is bound by memory reads more than by arithmetic. A caller that
 * prefers arithmetic for short sequences can compare swan_cache_tokens with
 * this figure. */
int64_t swan_cache_break_even_tokens(const swan_cache *c);

/* The message of the last failing call on this thread ("" if none). */
const char *swan_last_error(void);

/* Frees the cache and everything it holds; NULL is ignored. */
void swan_cache_destroy(swan_cache *c);

/* Folds the value rotations into a model's projections, so that the cache can
 * run with values_prerotated = 1 and output_rotated = 1 and produce the same
 * layer output: W_V ← W_V · R_V and, per query head j, W_O rows of head j ←
 * R_V[j / G]ᵀ · those rows. w_v: [model_dim][H*D] (v = x · W_V);
 * w_o: [H*G*D][model_dim] (y = o · W_O); rot_v: [H][D][D]. In place. */
swan_status swan_fold_value_rotation(int32_t num_kv_heads, int32_t group_size,
                                     int32_t head_dim, int32_t model_dim,
                                     const float *rot_v, float *w_v,
                                     float *w_o);

#ifdef __cplusplus
}
#endif

#endif /* SWAN_SWAN_H */
