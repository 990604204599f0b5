/*
 * reduce.c - host reduction kernels: one small vectorisable loop per dtype x op, picked from a
 * table, and the float16/bfloat16 conversions they use (portable, branch-free bit twiddling).
 */
#include "core/reduce.h"

#include <string.h>

/*
 * How the loops are made fast:
 *  - Each dtype x op is its own static function, so no switch runs per element.
 *  - dst may alias a or b exactly, so `restrict` would be a lie (undefined behaviour). Instead
 *    the inner loop tells the compiler there is no loop-carried dependence, which is true even
 *    when aliased: element i only reads a[i] and b[i] before writing dst[i].
 *  - The inner loop has a fixed trip count (BLOCK), so gcc's -O2 "very cheap" cost model,
 *    which refuses loops that need a scalar epilogue, still vectorises it; the tail runs after.
 *  - On x86-64 the kernels are cloned for AVX2 and picked at load time (ifunc).
 */
#define BLOCK 64

#if defined(__clang__)
/* Below -O2 clang does not vectorise and would warn that the pragma went unheeded. */
#pragma clang diagnostic ignored "-Wpass-failed"
#define IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define IVDEP _Pragma("GCC ivdep")
#else
#define IVDEP
#endif

/* Not under ThreadSanitizer: it instruments the ifunc resolvers, which run before its
 * runtime is up (every program crashed at load). */
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute) && !defined(WEFT_TSAN)
#if __has_attribute(target_clones)
#define HOT __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef HOT
#define HOT
#endif

typedef void (*kernel_fn)(void *dst, const void *a, const void *b, size_t n);
typedef void (*finish_fn)(void *buf, size_t n, int nranks);

/* ---- conversions ------------------------------------------------------------------------- */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* All-ones when c holds. The conversions select with masks, not ?:, because gcc turns a ?:
 * whose arm does float arithmetic into a branch (the arithmetic might trap), and a branch
 * stops the vectoriser. */
static inline uint32_t mask_if(int c)
{
    return (uint32_t)0 - (uint32_t)c;
}

/* |f| as a signed int: x86 SIMD compares signed lanes only, so this keeps compares cheap. */
static inline int32_t abs_i32(uint32_t u)
{
    return (int32_t)(u & 0x7fffffffu);
}

static inline uint32_t select_u32(uint32_t mask, uint32_t x, uint32_t y)
{
    return (x & mask) | (y & ~mask);
}

/* A NaN gets its quiet bit set, as the F16C instruction does, so every host produces the
 * same bits. */
static inline float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    /* rebias the exponent from 15 to 127 */
    uint32_t norm = (em << 13) + 0x38000000u;
    uint32_t infnan = ((em << 13) + 0x70000000u) | (mask_if((int32_t)em > 0x7c00) & 0x00400000u);
    /* subnormal: em * 2^-24 is exact in float */
    uint32_t sub = f32_bits((float)(int32_t)em * 0x1p-24f);
    uint32_t r = select_u32(mask_if((int32_t)em < 0x0400), sub, norm);

    r = select_u32(mask_if((int32_t)em >= 0x7c00), infnan, r);
    return bits_f32(sign | r);
}

static inline uint16_t float_to_half(float f)
{
    uint32_t u = f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    int32_t sa = abs_i32(u);
    /* normal result: rebias, then round the 13 dropped bits to nearest even; a carry out of
     * the mantissa correctly bumps the exponent */
    uint32_t norm = (a - 0x38000000u + 0xfffu + ((a >> 13) & 1u)) >> 13;
    /* subnormal result (|f| < 2^-14): in [0.5, 1) a float's ulp is 2^-24, the half subnormal
     * step, so adding 0.5 makes the FPU round to nearest even for us */
    uint32_t sub = f32_bits(bits_f32(a) + 0.5f) - 0x3f000000u;
    uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
    uint32_t r = select_u32(mask_if(sa < 0x38800000), sub, norm);

    /* 65520 = halfway between 65504 (the largest half) and 65536 rounds to even: infinity */
    r = select_u32(mask_if(sa >= 0x477ff000), 0x7c00u, r);
    r = select_u32(mask_if(sa > 0x7f800000), nan, r);
    return (uint16_t)(sign | r);
}

static inline float bf16_to_float(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

static inline uint16_t float_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    /* add just under half an ulp, plus one more when the kept lsb is odd: ties go to even;
     * infinity and overflow to infinity come out right, NaN would not, so it is kept apart */
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t nan = (u >> 16) | 0x40u;

    return (uint16_t)select_u32(mask_if(abs_i32(u) > 0x7f800000), nan, rounded);
}

float weft_half_to_float(uint16_t h)
{
    return half_to_float(h);
}

uint16_t weft_float_to_half(float f)
{
    return float_to_half(f);
}

float weft_bf16_to_float(uint16_t b)
{
    return bf16_to_float(b);
}

uint16_t weft_float_to_bf16(float f)
{
    return float_to_bf16(f);
}

/* ---- element operations ------------------------------------------------------------------ */

/* Integers: SUM and PROD in the unsigned type, so overflow wraps instead of being undefined. */
#define INT_OPS(tag, T, U)                                                  \
    static inline T tag##_sum1(T x, T y) { return (T)(U)((U)x + (U)y); }   \
    static inline T tag##_prod1(T x, T y) { return (T)(U)((U)x * (U)y); }  \
    static inline T tag##_min1(T x, T y) { return x < y ? x : y; }         \
    static inline T tag##_max1(T x, T y) { return x > y ? x : y; }

/* Floats: MIN and MAX return NaN when either operand is NaN (a NaN in a is returned as is,
 * else the comparison is false and b, the NaN, is returned). Unlike fmin/fmax, which drop a
 * NaN: a reduction that saw a NaN should say so. */
#define FLT_OPS(tag, T)                                                     \
    static inline T tag##_sum1(T x, T y) { return x + y; }                 \
    static inline T tag##_prod1(T x, T y) { return x * y; }                \
    static inline T tag##_min1(T x, T y) { return x != x ? x : (x < y ? x : y); } \
    static inline T tag##_max1(T x, T y) { return x != x ? x : (x > y ? x : y); }

/* 16-bit floats: widen to float, combine, round back. Float has at least 2p+2 significand
 * bits for both formats, so rounding twice gives the correctly rounded result. MIN and MAX
 * pick one of the original operands (same rule as FLT_OPS), so a NaN keeps its exact bits;
 * the masks are there because gcc would not vectorise the ?: form. */
#define HALF_OPS(tag, TO_F, FROM_F)                                                   \
    static inline uint16_t tag##_sum1(uint16_t x, uint16_t y)                         \
    {                                                                                 \
        return FROM_F(TO_F(x) + TO_F(y));                                             \
    }                                                                                 \
    static inline uint16_t tag##_prod1(uint16_t x, uint16_t y)                        \
    {                                                                                 \
        return FROM_F(TO_F(x) * TO_F(y));                                             \
    }                                                                                 \
    static inline uint16_t tag##_min1(uint16_t x, uint16_t y)                         \
    {                                                                                 \
        float fx = TO_F(x), fy = TO_F(y);                                             \
        return (uint16_t)select_u32(mask_if((fx != fx) | (fx < fy)), x, y);           \
    }                                                                                 \
    static inline uint16_t tag##_max1(uint16_t x, uint16_t y)                         \
    {                                                                                 \
        float fx = TO_F(x), fy = TO_F(y);                                             \
        return (uint16_t)select_u32(mask_if((fx != fx) | (fx > fy)), x, y);           \
    }

/* ---- kernels ----------------------------------------------------------------------------- */

#define KERNEL(name, T, op1)                                                \
    HOT static void name(void *vd, const void *va, const void *vb, size_t n) \
    {                                                                       \
        T *d = vd;                                                          \
        const T *a = va;                                                    \
        const T *b = vb;                                                    \
        size_t i = 0;                                                       \
        for (; i + BLOCK <= n; i += BLOCK) {                                \
            IVDEP                                                           \
            for (size_t j = 0; j < BLOCK; j++)                              \
                d[i + j] = op1(a[i + j], b[i + j]);                         \
        }                                                                   \
        for (; i < n; i++)                                                  \
            d[i] = op1(a[i], b[i]);                                         \
    }

#define KERNELS(tag, T)               \
    KERNEL(tag##_sum, T, tag##_sum1)   \
    KERNEL(tag##_prod, T, tag##_prod1) \
    KERNEL(tag##_min, T, tag##_min1)   \
    KERNEL(tag##_max, T, tag##_max1)

INT_OPS(i8, int8_t, uint8_t)
INT_OPS(u8, uint8_t, uint8_t)
INT_OPS(i32, int32_t, uint32_t)
INT_OPS(u32, uint32_t, uint32_t)
INT_OPS(i64, int64_t, uint64_t)
INT_OPS(u64, uint64_t, uint64_t)
FLT_OPS(f32, float)
FLT_OPS(f64, double)
HALF_OPS(f16, half_to_float, float_to_half)
HALF_OPS(bf16, bf16_to_float, float_to_bf16)

KERNELS(i8, int8_t)
KERNELS(u8, uint8_t)
KERNELS(i32, int32_t)
KERNELS(u32, uint32_t)
KERNELS(i64, int64_t)
KERNELS(u64, uint64_t)
KERNEL(f16_sum_portable, uint16_t, f16_sum1)
KERNEL(f16_prod_portable, uint16_t, f16_prod1)
KERNEL(f16_min, uint16_t, f16_min1)
KERNEL(f16_max, uint16_t, f16_max1)
KERNEL(bf16_sum_portable, uint16_t, bf16_sum1)
KERNEL(bf16_prod_portable, uint16_t, bf16_prod1)
KERNEL(bf16_min, uint16_t, bf16_min1)
KERNEL(bf16_max, uint16_t, bf16_max1)
KERNELS(f32, float)
KERNELS(f64, double)

/* ---- float16 with F16C, bfloat16 with AVX2 ---------------------------------------------- */

/* Converting float16 in software costs more than the arithmetic, so on x86-64 hosts with
 * AVX2 and F16C the SUM, PROD and AVG-finish loops use the conversion instructions (and
 * bfloat16 SUM and PROD hand-written AVX2). Both round to
 * nearest even and quiet NaNs the same way as the portable code, which the unit test checks
 * bit for bit (the portable conversions are also tested exhaustively on their own). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(WEFT_REDUCE_NO_F16C)
#include <cpuid.h>
#include <immintrin.h>
#include <stdatomic.h>

#define F16C_TARGET __attribute__((target("avx,avx2,f16c")))
#define F16C_ROUND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* cpuid can trap to the hypervisor in a VM, so ask once: 0 = not yet, 1 = no, 2 = yes.
 * Racing threads compute the same answer. */
static atomic_int f16c_state;

static int have_f16c(void)
{
    int state = atomic_load_explicit(&f16c_state, memory_order_relaxed);

    if (state == 0) {
        unsigned int eax, ebx, ecx, edx;
        /* avx2 is asked of libgcc/compiler-rt, which also check the OS saves YMM state */
        int yes = __builtin_cpu_supports("avx2") && __get_cpuid(1, &eax, &ebx, &ecx, &edx) &&
                  (ecx & bit_F16C);
        state = yes ? 2 : 1;
        atomic_store_explicit(&f16c_state, state, memory_order_relaxed);
    }
    return state == 2;
}

#define F16C_KERNEL(name, vop, tail_fn)                                              \
    F16C_TARGET static void name(void *vd, const void *va, const void *vb, size_t n) \
    {                                                                                \
        uint16_t *d = vd;                                                            \
        const uint16_t *a = va;                                                      \
        const uint16_t *b = vb;                                                      \
        size_t i = 0;                                                                \
        for (; i + 8 <= n; i += 8) {                                                 \
            __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i)));   \
            __m256 y = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i)));   \
            __m128i r = _mm256_cvtps_ph(vop(x, y), F16C_ROUND);                      \
            _mm_storeu_si128((__m128i *)(d + i), r);                                 \
        }                                                                            \
        tail_fn(d + i, a + i, b + i, n - i);                                         \
    }

F16C_KERNEL(f16_sum_f16c, _mm256_add_ps, f16_sum_portable)
F16C_KERNEL(f16_prod_f16c, _mm256_mul_ps, f16_prod_portable)

/* bfloat16 needs no conversion instruction, but the compilers' own vectorisation of the
 * widen/round/narrow steps is slow; unpacking against zero widens to float in place and
 * packus undoes it in the same lane order. Same rounding and NaN rule as float_to_bf16. */
static inline F16C_TARGET __m256i bf16_round8(__m256 r)
{
    __m256i u = _mm256_castps_si256(r);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                        _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(rounded, nan, is_nan);
}

#define BF16_AVX2_KERNEL(name, vop, tail_fn)                                         \
    F16C_TARGET static void name(void *vd, const void *va, const void *vb, size_t n) \
    {                                                                                \
        uint16_t *d = vd;                                                            \
        const uint16_t *a = va;                                                      \
        const uint16_t *b = vb;                                                      \
        __m256i z = _mm256_setzero_si256();                                          \
        size_t i = 0;                                                                \
        for (; i + 16 <= n; i += 16) {                                               \
            __m256i x = _mm256_loadu_si256((const __m256i *)(a + i));                \
            __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));                \
            __m256 xl = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, x));            \
            __m256 xh = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, x));            \
            __m256 yl = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, y));            \
            __m256 yh = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, y));            \
            __m256i r = _mm256_packus_epi32(bf16_round8(vop(xl, yl)),                \
                                            bf16_round8(vop(xh, yh)));               \
            _mm256_storeu_si256((__m256i *)(d + i), r);                              \
        }                                                                            \
        tail_fn(d + i, a + i, b + i, n - i);                                         \
    }

BF16_AVX2_KERNEL(bf16_sum_avx2, _mm256_add_ps, bf16_sum_portable)
BF16_AVX2_KERNEL(bf16_prod_avx2, _mm256_mul_ps, bf16_prod_portable)

F16C_TARGET static void f16_finish_f16c(uint16_t *buf, size_t n, int nranks)
{
    __m256 div = _mm256_set1_ps((float)nranks);
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(buf + i)));
        __m128i r = _mm256_cvtps_ph(_mm256_div_ps(x, div), F16C_ROUND);
        _mm_storeu_si128((__m128i *)(buf + i), r);
    }
    for (; i < n; i++)
        buf[i] = float_to_half(half_to_float(buf[i]) / (float)nranks);
}
#else
static int have_f16c(void)
{
    return 0;
}
#define f16_sum_f16c f16_sum_portable
#define f16_prod_f16c f16_prod_portable
#define bf16_sum_avx2 bf16_sum_portable
#define bf16_prod_avx2 bf16_prod_portable
static void f16_finish_f16c(uint16_t *buf, size_t n, int nranks)
{
    (void)buf;
    (void)n;
    (void)nranks;
}
#endif

static void f16_sum(void *dst, const void *a, const void *b, size_t n)
{
    if (have_f16c())
        f16_sum_f16c(dst, a, b, n);
    else
        f16_sum_portable(dst, a, b, n);
}

static void f16_prod(void *dst, const void *a, const void *b, size_t n)
{
    if (have_f16c())
        f16_prod_f16c(dst, a, b, n);
    else
        f16_prod_portable(dst, a, b, n);
}

static void bf16_sum(void *dst, const void *a, const void *b, size_t n)
{
    if (have_f16c())
        bf16_sum_avx2(dst, a, b, n);
    else
        bf16_sum_portable(dst, a, b, n);
}

static void bf16_prod(void *dst, const void *a, const void *b, size_t n)
{
    if (have_f16c())
        bf16_prod_avx2(dst, a, b, n);
    else
        bf16_prod_portable(dst, a, b, n);
}

/* Indexed by op; AVG is SUM here (the division is weft_reduce_avg_finish). */
#define ROW(tag) { tag##_sum, tag##_prod, tag##_min, tag##_max, tag##_sum }

static const kernel_fn kernels[WEFT_NUM_DTYPES][WEFT_NUM_OPS] = {
    [WEFT_INT8] = ROW(i8),      [WEFT_UINT8] = ROW(u8),       [WEFT_INT32] = ROW(i32),
    [WEFT_UINT32] = ROW(u32),   [WEFT_INT64] = ROW(i64),      [WEFT_UINT64] = ROW(u64),
    [WEFT_FLOAT16] = ROW(f16),  [WEFT_BFLOAT16] = ROW(bf16),  [WEFT_FLOAT32] = ROW(f32),
    [WEFT_FLOAT64] = ROW(f64),
};

/* Arguments were validated by the caller; an invalid dtype or op is ignored rather than
 * crashing, since this has no way to report it. */
void weft_reduce_local(void *dst, const void *a, const void *b, size_t count, weft_dtype_t dtype,
                       weft_op_t op)
{
    if ((unsigned)dtype >= WEFT_NUM_DTYPES || (unsigned)op >= WEFT_NUM_OPS || count == 0)
        return;
    kernels[dtype][op](dst, a, b, count);
}

/* ---- AVG finish -------------------------------------------------------------------------- */

/* Integers divide in a 64-bit type so nranks is never truncated to the element type; C
 * division truncates toward zero. There is no SIMD integer division, so no blocking here. */
#define FINISH_INT(name, T, W)                                      \
    static void name(void *vbuf, size_t n, int nranks)              \
    {                                                               \
        T *buf = vbuf;                                              \
        W div = (W)nranks;                                          \
        for (size_t i = 0; i < n; i++)                              \
            buf[i] = (T)((W)buf[i] / div);                          \
    }

/* Floats divide (not multiply by 1/nranks, which would round twice). */
#define FINISH_FLT(name, T)                                         \
    HOT static void name(void *vbuf, size_t n, int nranks)          \
    {                                                               \
        T *restrict buf = vbuf;                                     \
        T div = (T)nranks;                                          \
        for (size_t i = 0; i + BLOCK <= n; i += BLOCK)              \
            for (size_t j = 0; j < BLOCK; j++)                      \
                buf[i + j] = buf[i + j] / div;                      \
        for (size_t i = n - n % BLOCK; i < n; i++)                  \
            buf[i] = buf[i] / div;                                  \
    }

#define FINISH_HALF(name, TO_F, FROM_F)                             \
    HOT static void name(void *vbuf, size_t n, int nranks)          \
    {                                                               \
        uint16_t *restrict buf = vbuf;                              \
        float div = (float)nranks;                                  \
        for (size_t i = 0; i + BLOCK <= n; i += BLOCK)              \
            for (size_t j = 0; j < BLOCK; j++)                      \
                buf[i + j] = FROM_F(TO_F(buf[i + j]) / div);        \
        for (size_t i = n - n % BLOCK; i < n; i++)                  \
            buf[i] = FROM_F(TO_F(buf[i]) / div);                    \
    }

FINISH_INT(i8_finish, int8_t, int64_t)
FINISH_INT(u8_finish, uint8_t, uint64_t)
FINISH_INT(i32_finish, int32_t, int64_t)
FINISH_INT(u32_finish, uint32_t, uint64_t)
FINISH_INT(i64_finish, int64_t, int64_t)
FINISH_INT(u64_finish, uint64_t, uint64_t)
FINISH_HALF(f16_finish_portable, half_to_float, float_to_half)
FINISH_HALF(bf16_finish, bf16_to_float, float_to_bf16)
FINISH_FLT(f32_finish, float)
FINISH_FLT(f64_finish, double)

static void f16_finish(void *buf, size_t n, int nranks)
{
    if (have_f16c())
        f16_finish_f16c(buf, n, nranks);
    else
        f16_finish_portable(buf, n, nranks);
}

static const finish_fn finishers[WEFT_NUM_DTYPES] = {
    [WEFT_INT8] = i8_finish,      [WEFT_UINT8] = u8_finish,       [WEFT_INT32] = i32_finish,
    [WEFT_UINT32] = u32_finish,   [WEFT_INT64] = i64_finish,      [WEFT_UINT64] = u64_finish,
    [WEFT_FLOAT16] = f16_finish,  [WEFT_BFLOAT16] = bf16_finish,  [WEFT_FLOAT32] = f32_finish,
    [WEFT_FLOAT64] = f64_finish,
};

/* nranks < 1 is meaningless and ignored like an invalid dtype; dividing by 1 changes nothing. */
void weft_reduce_avg_finish(void *buf, size_t count, weft_dtype_t dtype, int nranks)
{
    if ((unsigned)dtype >= WEFT_NUM_DTYPES || nranks <= 1 || count == 0)
        return;
    finishers[dtype](buf, count, nranks);
}

/* ---- 8-bit AVG in int32 ------------------------------------------------------------------ */

void weft_reduce_widen_i32(int32_t *dst, const void *src, weft_dtype_t dtype, size_t count)
{
    if (dtype == WEFT_INT8) {
        const int8_t *s = src;
        for (size_t i = 0; i < count; i++)
            dst[i] = s[i];
    } else if (dtype == WEFT_UINT8) {
        const uint8_t *s = src;
        for (size_t i = 0; i < count; i++)
            dst[i] = s[i];
    }
}

void weft_reduce_avg_narrow_i32(void *dst, weft_dtype_t dtype, const int32_t *sum, size_t count,
                                int nranks)
{
    const int32_t div = nranks < 1 ? 1 : nranks;
    if (dtype == WEFT_INT8) {
        int8_t *d = dst;
        for (size_t i = 0; i < count; i++)
            d[i] = (int8_t)(sum[i] / div);
    } else if (dtype == WEFT_UINT8) {
        uint8_t *d = dst;
        for (size_t i = 0; i < count; i++)
            d[i] = (uint8_t)(sum[i] / div);
    }
}
