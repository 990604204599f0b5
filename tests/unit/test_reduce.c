/*
 * test_reduce.c - the host reduction kernels against references computed in double/int64,
 * the float16/bfloat16 conversions (exhaustively where possible), and the dtype helpers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/reduce.h"

#define GUARD 64 /* bytes past the end of dst that must stay untouched */
#define GUARD_BYTE 0xa5

/* the required counts, plus 7, 64 and 127 around the 8-wide and 64-wide loop edges */
static const size_t counts[] = {0, 1, 3, 7, 17, 64, 127, 1000, 4099};
#define NCOUNTS (sizeof(counts) / sizeof(counts[0]))

#define CHECK(cond, ...)                  \
    do {                                  \
        if (!(cond)) {                    \
            print_error(__VA_ARGS__);     \
            print_error("\n");            \
            fail_msg("check failed: %s", #cond); \
        }                                 \
    } while (0)

/* ---- deterministic random numbers --------------------------------------------------------- */

static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
}

static uint64_t rng_next(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* ---- independent reference conversions ---------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* Decodes a binary format with `mbits` stored mantissa bits and exponent bias `bias`. */
static double ref_decode(uint32_t bits, int ebits, int mbits)
{
    int bias = (1 << (ebits - 1)) - 1;
    uint32_t sign = bits >> (ebits + mbits);
    uint32_t exp = (bits >> mbits) & ((1u << ebits) - 1);
    uint32_t man = bits & ((1u << mbits) - 1);
    double v;

    if (exp == (1u << ebits) - 1)
        v = man ? NAN : INFINITY;
    else if (exp == 0)
        v = ldexp((double)man, 1 - bias - mbits);
    else
        v = ldexp((double)(man | (1u << mbits)), (int)exp - bias - mbits);
    return sign ? -v : v;
}

static double ref_half_value(uint16_t h)
{
    return ref_decode(h, 5, 10);
}

static double ref_bf16_value(uint16_t b)
{
    return ref_decode(b, 8, 7);
}

/* Rounds x to nearest-even in a format with p significand bits and exponents emin..emax
 * (subnormals below emin, infinity above). Uses nearbyint in the default rounding mode. */
static double ref_round(double x, int p, int emin, int emax)
{
    double a = fabs(x), r;
    int e;

    if (isnan(x) || isinf(x) || x == 0)
        return x;
    frexp(a, &e);
    e -= 1; /* a in [2^e, 2^(e+1)) */
    if (e < emin)
        e = emin;
    r = ldexp(nearbyint(ldexp(a, p - 1 - e)), e - (p - 1));
    if (r >= ldexp(1.0, emax + 1))
        r = INFINITY;
    return copysign(r, x);
}

static double ref_round_half(double x)
{
    return ref_round(x, 11, -14, 15);
}

static double ref_round_bf16(double x)
{
    return ref_round(x, 8, -126, 127);
}

/* Same value, same sign (so -0 != +0), and NaN equals NaN. */
static int same_value(double got, double want)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    return got == want && signbit(got) == signbit(want);
}

/* ---- element access ------------------------------------------------------------------------ */

static int is_signed_int(weft_dtype_t dt)
{
    return dt == WEFT_INT8 || dt == WEFT_INT32 || dt == WEFT_INT64;
}

static int is_int(weft_dtype_t dt)
{
    return dt <= WEFT_UINT64;
}

/* Integers, sign-extended to 64 bits where signed. */
static uint64_t get_int(weft_dtype_t dt, const void *buf, size_t i)
{
    switch (dt) {
    case WEFT_INT8: return (uint64_t)(int64_t)((const int8_t *)buf)[i];
    case WEFT_UINT8: return ((const uint8_t *)buf)[i];
    case WEFT_INT32: return (uint64_t)(int64_t)((const int32_t *)buf)[i];
    case WEFT_UINT32: return ((const uint32_t *)buf)[i];
    case WEFT_INT64: return (uint64_t)((const int64_t *)buf)[i];
    default: return ((const uint64_t *)buf)[i];
    }
}

/* Stores the low bits (wrap-around modulo 2^n). */
static void set_int(weft_dtype_t dt, void *buf, size_t i, uint64_t v)
{
    switch (dt) {
    case WEFT_INT8:
    case WEFT_UINT8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    case WEFT_INT32:
    case WEFT_UINT32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
    default: ((uint64_t *)buf)[i] = v; break;
    }
}

static void fill_random(weft_dtype_t dt, void *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next();
        int wide = (r & 3) == 0; /* a quarter spans the whole finite range */
        switch (dt) {
        case WEFT_FLOAT16: {
            uint16_t h = (uint16_t)(r >> 16);
            if (!wide) /* exponent near 1.0 so sums and products round often */
                h = (uint16_t)((h & 0x83ff) | ((uint16_t)(12 + (r >> 40) % 7) << 10));
            if ((h & 0x7c00) == 0x7c00)
                h &= 0xbfff; /* no inf/NaN here: they have their own test */
            ((uint16_t *)buf)[i] = h;
            break;
        }
        case WEFT_BFLOAT16: {
            uint16_t b = (uint16_t)(r >> 16);
            if (!wide)
                b = (uint16_t)((b & 0x807f) | ((uint16_t)(120 + (r >> 40) % 15) << 7));
            if ((b & 0x7f80) == 0x7f80)
                b &= 0xbfff;
            ((uint16_t *)buf)[i] = b;
            break;
        }
        case WEFT_FLOAT32: {
            uint32_t u = (uint32_t)(r >> 32);
            if (!wide)
                u = (u & 0x807fffffu) | ((uint32_t)(117 + (r >> 8) % 21) << 23);
            if ((u & 0x7f800000u) == 0x7f800000u)
                u &= 0xbfffffffu;
            ((float *)buf)[i] = bits_f32(u);
            break;
        }
        case WEFT_FLOAT64: {
            /* moderate exponents: the residual checks below need no underflow */
            double m = (double)(r >> 11) * 0x1p-53 + 0.5;
            int e = (int)((r >> 3) % 81) - 40;
            ((double *)buf)[i] = ldexp((r & 1) ? -m : m, e);
            break;
        }
        default:
            set_int(dt, buf, i, r);
            break;
        }
    }
}

/* ---- references ---------------------------------------------------------------------------- */

static uint64_t ref_int_op(weft_dtype_t dt, weft_op_t op, uint64_t x, uint64_t y)
{
    int lt = is_signed_int(dt) ? (int64_t)x < (int64_t)y : x < y;

    switch (op) {
    case WEFT_PROD: return x * y;
    case WEFT_MIN: return lt ? x : y;
    case WEFT_MAX: return (is_signed_int(dt) ? (int64_t)x > (int64_t)y : x > y) ? x : y;
    default: return x + y; /* SUM and AVG */
    }
}

/* The kernels' MIN/MAX rule: a NaN in x wins, else the comparison picks (a NaN in y wins
 * because the comparison is false). */
static int pick_x(weft_op_t op, double x, double y)
{
    if (isnan(x))
        return 1;
    return op == WEFT_MIN ? x < y : x > y;
}

static double ref_flt_op(weft_op_t op, double x, double y)
{
    switch (op) {
    case WEFT_PROD: return x * y;
    case WEFT_MIN:
    case WEFT_MAX: return pick_x(op, x, y) ? x : y;
    default: return x + y;
    }
}

/* For float64 there is no wider exact type: check s against the exact result through its
 * rounding error (error-free transformations), which must be at most half an ulp of s. */
static int f64_correctly_rounded(weft_op_t op, double x, double y, double s)
{
    double err, ulp;

    if (op == WEFT_MIN || op == WEFT_MAX)
        return memcmp(&s, pick_x(op, x, y) ? &x : &y, sizeof(s)) == 0;
    if (op == WEFT_PROD) {
        err = fma(x, y, -s);
    } else {
        double bv = s - x, av = s - bv;
        err = (x - av) + (y - bv);
    }
    /* the spacing on the side of the exact result (it halves below a power of two) */
    ulp = fabs(nextafter(s, err > 0 ? INFINITY : -INFINITY) - s);
    if (fabs(err) < ulp / 2)
        return 1;
    /* a tie must have gone to the even neighbour */
    if (fabs(err) == ulp / 2) {
        uint64_t bits;
        memcpy(&bits, &s, sizeof(bits));
        return (bits & 1) == 0;
    }
    return 0;
}

/* Checks dst[i] == a[i] op b[i] for every i; a and b are the original inputs. */
static void check_result(weft_dtype_t dt, weft_op_t op, const void *a, const void *b,
                         const void *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (is_int(dt)) {
            uint64_t want = ref_int_op(dt, op, get_int(dt, a, i), get_int(dt, b, i));
            unsigned char tmp[8];
            set_int(dt, tmp, 0, want);
            CHECK(get_int(dt, dst, i) == get_int(dt, tmp, 0), "%s %s i=%zu: got %llu want %llu",
                  weft_dtype_name(dt), weft_op_name(op), i,
                  (unsigned long long)get_int(dt, dst, i), (unsigned long long)get_int(dt, tmp, 0));
        } else if (dt == WEFT_FLOAT32) {
            float x = ((const float *)a)[i], y = ((const float *)b)[i];
            float got = ((const float *)dst)[i];
            float want = (float)ref_flt_op(op, x, y);
            CHECK(f32_bits(got) == f32_bits(want), "float32 %s i=%zu: %a op %a = %a, want %a",
                  weft_op_name(op), i, (double)x, (double)y, (double)got, (double)want);
        } else if (dt == WEFT_FLOAT64) {
            double x = ((const double *)a)[i], y = ((const double *)b)[i];
            double got = ((const double *)dst)[i];
            CHECK(f64_correctly_rounded(op, x, y, got), "float64 %s i=%zu: %a op %a = %a",
                  weft_op_name(op), i, x, y, got);
        } else {
            int half = dt == WEFT_FLOAT16;
            uint16_t x = ((const uint16_t *)a)[i], y = ((const uint16_t *)b)[i];
            uint16_t got = ((const uint16_t *)dst)[i];
            double fx = half ? ref_half_value(x) : ref_bf16_value(x);
            double fy = half ? ref_half_value(y) : ref_bf16_value(y);
            double gv = half ? ref_half_value(got) : ref_bf16_value(got);
            if (op == WEFT_MIN || op == WEFT_MAX) {
                uint16_t want = pick_x(op, fx, fy) ? x : y;
                CHECK(got == want, "%s %s i=%zu: %04x op %04x = %04x, want %04x",
                      weft_dtype_name(dt), weft_op_name(op), i, x, y, got, want);
            } else {
                double exact = ref_flt_op(op, fx, fy);
                double want = half ? ref_round_half(exact) : ref_round_bf16(exact);
                CHECK(same_value(gv, want), "%s %s i=%zu: %04x op %04x = %04x (%a), want %a",
                      weft_dtype_name(dt), weft_op_name(op), i, x, y, got, gv, want);
            }
        }
    }
}

/* ---- kernel tests -------------------------------------------------------------------------- */

static void test_all_dtypes_ops(void **state)
{
    (void)state;
    rng_seed(1);
    for (int dt = 0; dt < WEFT_NUM_DTYPES; dt++) {
        size_t es = weft_dtype_size((weft_dtype_t)dt);
        for (int op = 0; op < WEFT_NUM_OPS; op++) {
            for (size_t c = 0; c < NCOUNTS; c++) {
                size_t n = counts[c], bytes = n * es;
                unsigned char *a = malloc(bytes + 1), *b = malloc(bytes + 1);
                unsigned char *a0 = malloc(bytes + 1), *b0 = malloc(bytes + 1);
                unsigned char *dst = malloc(bytes + GUARD), *out = malloc(bytes + 1);
                assert_non_null(a && b && a0 && b0 && dst && out);

                fill_random((weft_dtype_t)dt, a, n);
                fill_random((weft_dtype_t)dt, b, n);
                memcpy(a0, a, bytes);
                memcpy(b0, b, bytes);
                memset(dst, GUARD_BYTE, bytes + GUARD);

                weft_reduce_local(dst, a, b, n, (weft_dtype_t)dt, (weft_op_t)op);
                check_result((weft_dtype_t)dt, (weft_op_t)op, a0, b0, dst, n);
                for (size_t g = 0; g < GUARD; g++)
                    assert_int_equal(dst[bytes + g], GUARD_BYTE);
                if (bytes) {
                    assert_memory_equal(a, a0, bytes); /* inputs untouched */
                    assert_memory_equal(b, b0, bytes);
                    memcpy(out, dst, bytes);
                    /* in place, dst == a: same bits as out of place */
                    weft_reduce_local(a, a, b, n, (weft_dtype_t)dt, (weft_op_t)op);
                    assert_memory_equal(a, out, bytes);
                    /* dst == b: the operand order stays a op b */
                    memcpy(a, a0, bytes);
                    weft_reduce_local(b, a, b, n, (weft_dtype_t)dt, (weft_op_t)op);
                    assert_memory_equal(b, out, bytes);
                }

                free(a);
                free(b);
                free(a0);
                free(b0);
                free(dst);
                free(out);
            }
        }
    }
}

static void test_invalid_args_do_nothing(void **state)
{
    int32_t a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, d[4] = {9, 9, 9, 9};

    (void)state;
    weft_reduce_local(d, a, b, 4, WEFT_NUM_DTYPES, WEFT_SUM);
    weft_reduce_local(d, a, b, 4, (weft_dtype_t)-1, WEFT_SUM);
    weft_reduce_local(d, a, b, 4, WEFT_INT32, WEFT_NUM_OPS);
    weft_reduce_local(d, a, b, 0, WEFT_INT32, WEFT_SUM);
    weft_reduce_avg_finish(d, 4, WEFT_NUM_DTYPES, 2);
    weft_reduce_avg_finish(d, 4, WEFT_INT32, 0);
    weft_reduce_avg_finish(d, 4, WEFT_INT32, -3);
    for (int i = 0; i < 4; i++)
        assert_int_equal(d[i], 9);
    weft_reduce_local(d, a, b, 4, WEFT_INT32, WEFT_AVG); /* AVG reduces as SUM */
    assert_int_equal(d[0], 6);
    assert_int_equal(d[3], 12);
}

static void test_integer_wraparound(void **state)
{
    (void)state;
    {
        int8_t a[3] = {127, -128, 100}, b[3] = {1, -1, 100}, d[3];
        weft_reduce_local(d, a, b, 3, WEFT_INT8, WEFT_SUM);
        assert_int_equal(d[0], -128);
        assert_int_equal(d[1], 127);
        assert_int_equal(d[2], -56);
        weft_reduce_local(d, a, b, 3, WEFT_INT8, WEFT_PROD);
        assert_int_equal(d[0], 127);
        assert_int_equal(d[1], -128); /* -128 * -1 = 128 wraps to -128 */
        assert_int_equal(d[2], 16);   /* 10000 mod 256 */
    }
    {
        uint8_t a[2] = {255, 16}, b[2] = {1, 16}, d[2];
        weft_reduce_local(d, a, b, 2, WEFT_UINT8, WEFT_SUM);
        assert_int_equal(d[0], 0);
        assert_int_equal(d[1], 32);
        weft_reduce_local(d, a, b, 2, WEFT_UINT8, WEFT_PROD);
        assert_int_equal(d[0], 255);
        assert_int_equal(d[1], 0);
    }
    {
        int32_t a[2] = {INT32_MAX, INT32_MIN}, b[2] = {1, INT32_MIN}, d[2];
        weft_reduce_local(d, a, b, 2, WEFT_INT32, WEFT_SUM);
        assert_int_equal(d[0], INT32_MIN);
        assert_int_equal(d[1], 0);
        weft_reduce_local(d, a, b, 2, WEFT_INT32, WEFT_PROD);
        assert_int_equal(d[0], INT32_MAX);
        assert_int_equal(d[1], 0);
        weft_reduce_local(d, a, b, 2, WEFT_INT32, WEFT_MIN);
        assert_int_equal(d[0], 1);
        assert_int_equal(d[1], INT32_MIN);
    }
    {
        uint32_t a[1] = {UINT32_MAX}, b[1] = {UINT32_MAX}, d[1];
        weft_reduce_local(d, a, b, 1, WEFT_UINT32, WEFT_SUM);
        assert_int_equal(d[0], UINT32_MAX - 1);
        weft_reduce_local(d, a, b, 1, WEFT_UINT32, WEFT_PROD);
        assert_int_equal(d[0], 1);
    }
    {
        int64_t a[2] = {INT64_MAX, INT64_MIN}, b[2] = {1, -1}, d[2];
        weft_reduce_local(d, a, b, 2, WEFT_INT64, WEFT_SUM);
        assert_true(d[0] == INT64_MIN && d[1] == INT64_MAX);
        weft_reduce_local(d, a, b, 2, WEFT_INT64, WEFT_PROD);
        assert_true(d[0] == INT64_MAX && d[1] == INT64_MIN);
        weft_reduce_local(d, a, b, 2, WEFT_INT64, WEFT_MAX);
        assert_true(d[0] == INT64_MAX && d[1] == -1);
    }
    {
        uint64_t a[1] = {UINT64_MAX}, b[1] = {2}, d[1];
        weft_reduce_local(d, a, b, 1, WEFT_UINT64, WEFT_SUM);
        assert_true(d[0] == 1);
        weft_reduce_local(d, a, b, 1, WEFT_UINT64, WEFT_PROD);
        assert_true(d[0] == UINT64_MAX - 1);
        weft_reduce_local(d, a, b, 1, WEFT_UINT64, WEFT_MIN);
        assert_true(d[0] == 2);
    }
}

/* ---- NaN and infinity ---------------------------------------------------------------------- */

enum { S_NAN, S_INF, S_NINF, S_ONE, S_ZERO };

/* One of the special values in each floating format, as a double for the expectation. */
static const double special_values[] = {NAN, INFINITY, -INFINITY, 1.0, 0.0};

static void put_special(weft_dtype_t dt, void *buf, size_t i, int which)
{
    static const uint16_t f16[] = {0x7e00, 0x7c00, 0xfc00, 0x3c00, 0x0000};
    static const uint16_t bf16[] = {0x7fc0, 0x7f80, 0xff80, 0x3f80, 0x0000};

    switch (dt) {
    case WEFT_FLOAT16: ((uint16_t *)buf)[i] = f16[which]; break;
    case WEFT_BFLOAT16: ((uint16_t *)buf)[i] = bf16[which]; break;
    case WEFT_FLOAT32: ((float *)buf)[i] = (float)special_values[which]; break;
    default: ((double *)buf)[i] = special_values[which]; break;
    }
}

static double get_flt(weft_dtype_t dt, const void *buf, size_t i)
{
    switch (dt) {
    case WEFT_FLOAT16: return ref_half_value(((const uint16_t *)buf)[i]);
    case WEFT_BFLOAT16: return ref_bf16_value(((const uint16_t *)buf)[i]);
    case WEFT_FLOAT32: return ((const float *)buf)[i];
    default: return ((const double *)buf)[i];
    }
}

static void test_nan_and_infinity(void **state)
{
    static const weft_dtype_t fdt[] = {WEFT_FLOAT16, WEFT_BFLOAT16, WEFT_FLOAT32, WEFT_FLOAT64};
    static const weft_op_t ops[] = {WEFT_SUM, WEFT_PROD, WEFT_MIN, WEFT_MAX};

    (void)state;
    for (size_t t = 0; t < 4; t++) {
        for (size_t o = 0; o < 4; o++) {
            /* every ordered pair of specials, in a block long enough for the SIMD loops */
            enum { NS = 5, N = NS * NS * 8 };
            uint64_t a[N], b[N], d[N];
            for (size_t i = 0; i < N; i++) {
                put_special(fdt[t], a, i, (int)(i / NS % NS));
                put_special(fdt[t], b, i, (int)(i % NS));
            }
            weft_reduce_local(d, a, b, N, fdt[t], ops[o]);
            for (size_t i = 0; i < N; i++) {
                double x = special_values[i / NS % NS], y = special_values[i % NS];
                double want = ref_flt_op(ops[o], x, y);
                double got = get_flt(fdt[t], d, i);
                CHECK(same_value(got, want), "%s %s: %g op %g = %g, want %g",
                      weft_dtype_name(fdt[t]), weft_op_name(ops[o]), x, y, got, want);
            }
        }
    }
    /* explicitly: min/max return NaN whichever side it is on; inf - inf is NaN */
    {
        float a[2] = {NAN, 1.0f}, b[2] = {1.0f, NAN}, d[2];
        weft_reduce_local(d, a, b, 2, WEFT_FLOAT32, WEFT_MIN);
        assert_true(isnan(d[0]) && isnan(d[1]));
        weft_reduce_local(d, a, b, 2, WEFT_FLOAT32, WEFT_MAX);
        assert_true(isnan(d[0]) && isnan(d[1]));
    }
    {
        double a[2] = {INFINITY, -INFINITY}, b[2] = {-INFINITY, 5.0}, d[2];
        weft_reduce_local(d, a, b, 2, WEFT_FLOAT64, WEFT_SUM);
        assert_true(isnan(d[0]) && d[1] == -INFINITY);
        weft_reduce_local(d, a, b, 2, WEFT_FLOAT64, WEFT_MIN);
        assert_true(d[0] == -INFINITY && d[1] == -INFINITY);
    }
    {
        /* half overflow: 65504 + 16 = 65520 is the tie above the largest half: infinity */
        uint16_t a[3] = {0x7bff, 0x7bff, 0xfbff}, b[3] = {0x4c00, 0x4b80, 0xcc00}, d[3];
        weft_reduce_local(d, a, b, 3, WEFT_FLOAT16, WEFT_SUM);
        assert_int_equal(d[0], 0x7c00);
        assert_int_equal(d[1], 0x7bff); /* 65504 + 15 rounds back down */
        assert_int_equal(d[2], 0xfc00);
    }
}

static int f16_is_nan(uint16_t h)
{
    return (h & 0x7fff) > 0x7c00;
}

/* Bit-equal, except that with two NaN operands any NaN will do: the compiler may swap the
 * operands of a commutative add, and which payload survives follows the operand order. */
static int same_f16_bits(uint16_t got, uint16_t want, uint16_t x, uint16_t y)
{
    if (f16_is_nan(x) && f16_is_nan(y))
        return f16_is_nan(got);
    return got == want;
}

static int bf16_is_nan(uint16_t b)
{
    return (b & 0x7fff) > 0x7f80;
}

static int same_bf16_bits(uint16_t got, uint16_t want, uint16_t x, uint16_t y)
{
    if (bf16_is_nan(x) && bf16_is_nan(y))
        return bf16_is_nan(got);
    return got == want;
}

/* The dispatched float16/bfloat16 kernels (F16C/AVX2 where the host has them) must give the
 * same bits as the portable conversions for every kind of input, NaNs included. */
static void test_16bit_kernels_match_portable(void **state)
{
    enum { N = 1 << 16 };
    uint16_t *a = malloc(N * 2), *b = malloc(N * 2), *d = malloc(N * 2);

    (void)state;
    assert_non_null(a && b && d);
    rng_seed(7);
    for (size_t i = 0; i < N; i++) {
        a[i] = (uint16_t)i; /* every pattern once */
        b[i] = (uint16_t)rng_next();
    }
    weft_reduce_local(d, a, b, N, WEFT_FLOAT16, WEFT_SUM);
    for (size_t i = 0; i < N; i++) {
        uint16_t want = weft_float_to_half(weft_half_to_float(a[i]) + weft_half_to_float(b[i]));
        CHECK(same_f16_bits(d[i], want, a[i], b[i]), "f16 sum %04x + %04x = %04x, want %04x",
              a[i], b[i], d[i], want);
    }
    weft_reduce_local(d, a, b, N, WEFT_FLOAT16, WEFT_PROD);
    for (size_t i = 0; i < N; i++) {
        uint16_t want = weft_float_to_half(weft_half_to_float(a[i]) * weft_half_to_float(b[i]));
        CHECK(same_f16_bits(d[i], want, a[i], b[i]), "f16 prod %04x * %04x = %04x, want %04x",
              a[i], b[i], d[i], want);
    }
    /* bfloat16 SUM and PROD have a hand-written AVX2 path too */
    weft_reduce_local(d, a, b, N, WEFT_BFLOAT16, WEFT_SUM);
    for (size_t i = 0; i < N; i++) {
        uint16_t want = weft_float_to_bf16(weft_bf16_to_float(a[i]) + weft_bf16_to_float(b[i]));
        CHECK(same_bf16_bits(d[i], want, a[i], b[i]), "bf16 sum %04x + %04x = %04x, want %04x",
              a[i], b[i], d[i], want);
    }
    weft_reduce_local(d, a, b, N, WEFT_BFLOAT16, WEFT_PROD);
    for (size_t i = 0; i < N; i++) {
        uint16_t want = weft_float_to_bf16(weft_bf16_to_float(a[i]) * weft_bf16_to_float(b[i]));
        CHECK(same_bf16_bits(d[i], want, a[i], b[i]), "bf16 prod %04x * %04x = %04x, want %04x",
              a[i], b[i], d[i], want);
    }
    memcpy(d, a, N * 2);
    weft_reduce_avg_finish(d, N, WEFT_FLOAT16, 3);
    for (size_t i = 0; i < N; i++) {
        uint16_t want = weft_float_to_half(weft_half_to_float(a[i]) / 3.0f);
        CHECK(d[i] == want, "f16 avg %04x / 3 = %04x, want %04x", a[i], d[i], want);
    }
    free(a);
    free(b);
    free(d);
}

/* ---- AVG finish ---------------------------------------------------------------------------- */

static void test_avg_finish(void **state)
{
    static const int nranks[] = {1, 2, 3, 7, 200};
    enum { N = 1000 };

    (void)state;
    rng_seed(3);
    for (int dt = 0; dt < WEFT_NUM_DTYPES; dt++) {
        for (size_t k = 0; k < sizeof(nranks) / sizeof(nranks[0]); k++) {
            uint64_t orig[N], buf[N];
            int nr = nranks[k];
            fill_random((weft_dtype_t)dt, orig, N);
            memcpy(buf, orig, sizeof(buf));
            weft_reduce_avg_finish(buf, N, (weft_dtype_t)dt, nr);
            for (size_t i = 0; i < N; i++) {
                if (is_int((weft_dtype_t)dt)) {
                    uint64_t x = get_int((weft_dtype_t)dt, orig, i), want;
                    unsigned char tmp[8];
                    if (is_signed_int((weft_dtype_t)dt))
                        want = (uint64_t)((int64_t)x / nr); /* C truncates toward zero */
                    else
                        want = x / (uint64_t)nr;
                    set_int((weft_dtype_t)dt, tmp, 0, want);
                    CHECK(get_int((weft_dtype_t)dt, buf, i) == get_int((weft_dtype_t)dt, tmp, 0),
                          "%s avg i=%zu", weft_dtype_name((weft_dtype_t)dt), i);
                } else {
                    double x = get_flt((weft_dtype_t)dt, orig, i), want;
                    double got = get_flt((weft_dtype_t)dt, buf, i);
                    switch (dt) {
                    case WEFT_FLOAT16: want = ref_round_half(x / nr); break;
                    case WEFT_BFLOAT16: want = ref_round_bf16(x / nr); break;
                    case WEFT_FLOAT32: want = (float)(x / nr); break;
                    default: want = x / nr; break;
                    }
                    CHECK(same_value(got, want), "%s avg i=%zu: %a / %d = %a, want %a",
                          weft_dtype_name((weft_dtype_t)dt), i, x, nr, got, want);
                }
            }
        }
    }
    /* truncation toward zero, explicitly */
    {
        int8_t v[4] = {-7, 7, -128, 127};
        weft_reduce_avg_finish(v, 4, WEFT_INT8, 2);
        assert_int_equal(v[0], -3);
        assert_int_equal(v[1], 3);
        assert_int_equal(v[2], -64);
        assert_int_equal(v[3], 63);
    }
    {
        int32_t v[2] = {-5, 5};
        weft_reduce_avg_finish(v, 2, WEFT_INT32, 300); /* nranks wider than int8 too */
        assert_int_equal(v[0], 0);
        assert_int_equal(v[1], 0);
        uint8_t u[2] = {255, 200};
        weft_reduce_avg_finish(u, 2, WEFT_UINT8, 300);
        assert_int_equal(u[0], 0);
        uint8_t w[1] = {255};
        weft_reduce_avg_finish(w, 1, WEFT_UINT8, 2);
        assert_int_equal(w[0], 127);
    }
}

/* ---- conversions --------------------------------------------------------------------------- */

/* 8-bit AVG in int32: every int8/uint8 value widens exactly, and sums of up to 4096 ranks of
 * values at the ends of the range narrow to the truncated mean, never a wrapped one. */
static void test_avg_wide_8bit(void **state)
{
    (void)state;
    int8_t i8[256];
    uint8_t u8[256];
    int32_t wide[256];
    for (int v = 0; v < 256; v++) {
        i8[v] = (int8_t)(v - 128);
        u8[v] = (uint8_t)v;
    }
    weft_reduce_widen_i32(wide, i8, WEFT_INT8, 256);
    for (int v = 0; v < 256; v++)
        assert_int_equal(wide[v], v - 128);
    weft_reduce_widen_i32(wide, u8, WEFT_UINT8, 256);
    for (int v = 0; v < 256; v++)
        assert_int_equal(wide[v], v);

    static const int ranks[] = {2, 3, 4, 7, 64, 4096};
    for (size_t k = 0; k < sizeof(ranks) / sizeof(ranks[0]); k++) {
        const int n = ranks[k];
        for (int v = 0; v < 256; v++) {
            /* every rank sends the same value: the mean is that value */
            wide[v] = (v - 128) * n;
        }
        int8_t out8[256 + GUARD];
        memset(out8, GUARD_BYTE, sizeof(out8));
        weft_reduce_avg_narrow_i32(out8, WEFT_INT8, wide, 256, n);
        for (int v = 0; v < 256; v++)
            assert_int_equal(out8[v], v - 128);
        for (int g = 0; g < GUARD; g++)
            assert_int_equal((uint8_t)out8[256 + g], GUARD_BYTE);
        for (int v = 0; v < 256; v++)
            wide[v] = v * n;
        uint8_t outu[256];
        weft_reduce_avg_narrow_i32(outu, WEFT_UINT8, wide, 256, n);
        for (int v = 0; v < 256; v++)
            assert_int_equal(outu[v], v);
    }
    /* truncation toward zero: 100 + 100 + 101 = 301 / 3 = 100; -301 / 3 = -100; 127+127+1 */
    const int32_t sums[] = {301, -301, 255, -255, 0, -1, 1};
    const int8_t want[] = {100, -100, 85, -85, 0, 0, 0};
    int8_t got[7];
    weft_reduce_avg_narrow_i32(got, WEFT_INT8, sums, 7, 3);
    for (int i = 0; i < 7; i++)
        assert_int_equal(got[i], want[i]);
}

static void test_half_round_trip_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = weft_half_to_float((uint16_t)h);
        double want = ref_half_value((uint16_t)h);
        uint16_t back = weft_float_to_half(f);

        CHECK(same_value(f, want), "half %04x -> %a, want %a", h, (double)f, want);
        if (isnan(want)) {
            /* quieted on the way to float, as F16C does */
            CHECK(f32_bits(f) & 0x00400000u, "NaN %04x -> %a not quiet", h, (double)f);
            /* stays NaN, keeps its sign and payload, comes back quiet */
            CHECK((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0, "NaN %04x -> %04x", h, back);
            CHECK((back & 0x81ff) == (h & 0x81ff) && (back & 0x200), "NaN %04x -> %04x", h, back);
        } else {
            CHECK(back == h, "half %04x -> %a -> %04x", h, (double)f, back);
        }
    }
}

static void test_float_to_half_rounding(void **state)
{
    (void)state;
    /* a sweep through every float exponent, sign and many mantissas */
    for (uint64_t u = 0; u <= 0xffffffffull; u += 4093) {
        float f = bits_f32((uint32_t)u);
        double want = ref_round_half(f);
        double got = ref_half_value(weft_float_to_half(f));
        CHECK(same_value(got, want), "%a -> %a, want %a", (double)f, got, want);
    }
    /* every tie: the midpoint between each pair of adjacent finite halves goes to even */
    for (uint32_t h = 0; h < 0x7bff; h++) {
        double lo = ref_half_value((uint16_t)h), hi = ref_half_value((uint16_t)(h + 1));
        float mid = (float)((lo + hi) / 2); /* exact in float */
        uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        uint16_t got = weft_float_to_half(mid);
        CHECK(got == want, "tie %a -> %04x, want %04x", (double)mid, got, want);
        got = weft_float_to_half(-mid);
        CHECK(got == (want | 0x8000), "tie -%a -> %04x", (double)mid, got);
        /* and just either side of it */
        CHECK(weft_float_to_half(nextafterf(mid, 0)) == h, "below tie %04x", h);
        CHECK(weft_float_to_half(nextafterf(mid, INFINITY)) == h + 1, "above tie %04x", h);
    }
    assert_int_equal(weft_float_to_half(INFINITY), 0x7c00);
    assert_int_equal(weft_float_to_half(-INFINITY), 0xfc00);
    assert_int_equal(weft_float_to_half(1e10f), 0x7c00);
    assert_int_equal(weft_float_to_half(65520.0f), 0x7c00); /* tie above 65504: to inf */
    assert_int_equal(weft_float_to_half(nextafterf(65520.0f, 0)), 0x7bff);
    assert_int_equal(weft_float_to_half(-65520.0f), 0xfc00);
    assert_int_equal(weft_float_to_half(-0.0f), 0x8000);
    assert_int_equal(weft_float_to_half(0x1p-25f), 0x0000);             /* tie to even: 0 */
    assert_int_equal(weft_float_to_half(0x1.8p-24f), 0x0002);           /* tie to even: 2 */
    assert_int_equal(weft_float_to_half(0x1.ffcp-15f), 0x0400);         /* carries to normal */
    assert_true((weft_float_to_half(bits_f32(0x7f800001)) & 0x7fff) > 0x7c00); /* NaN */
    assert_true((weft_float_to_half(bits_f32(0xffc00000)) & 0xfe00) == 0xfe00); /* -NaN */
}

static void test_bf16_conversions(void **state)
{
    (void)state;
    for (uint32_t b = 0; b <= 0xffff; b++) {
        float f = weft_bf16_to_float((uint16_t)b);
        double want = ref_bf16_value((uint16_t)b);
        uint16_t back = weft_float_to_bf16(f);
        CHECK(same_value(f, want), "bf16 %04x -> %a, want %a", b, (double)f, want);
        if (isnan(want))
            CHECK((back & 0x7f80) == 0x7f80 && (back & 0x7f) && (back & 0x8000) == (b & 0x8000),
                  "bf16 NaN %04x -> %04x", b, back);
        else
            CHECK(back == b, "bf16 %04x -> %04x", b, back);
    }
    for (uint64_t u = 0; u <= 0xffffffffull; u += 4093) {
        float f = bits_f32((uint32_t)u);
        double got = ref_bf16_value(weft_float_to_bf16(f));
        CHECK(same_value(got, ref_round_bf16(f)), "%a -> %a", (double)f, got);
    }
    /* ties to even */
    assert_int_equal(weft_float_to_bf16(bits_f32(0x3f808000)), 0x3f80); /* 1 + 2^-8: down */
    assert_int_equal(weft_float_to_bf16(bits_f32(0x3f818000)), 0x3f82); /* odd lsb: up */
    assert_int_equal(weft_float_to_bf16(bits_f32(0x3f808001)), 0x3f81); /* above the tie */
    assert_int_equal(weft_float_to_bf16(bits_f32(0x3f807fff)), 0x3f80); /* below the tie */
    assert_int_equal(weft_float_to_bf16(bits_f32(0xbf818000)), 0xbf82); /* negative */
    assert_int_equal(weft_float_to_bf16(bits_f32(0x7f7f8000)), 0x7f80); /* tie at max: inf */
    assert_int_equal(weft_float_to_bf16(bits_f32(0x7f7f7fff)), 0x7f7f);
    assert_int_equal(weft_float_to_bf16(bits_f32(0x00018000)), 0x0002); /* subnormal tie */
    assert_int_equal(weft_float_to_bf16(bits_f32(0x00008000)), 0x0000);
    /* NaNs whose payload sits in the dropped bits must not turn into infinity */
    assert_int_equal(weft_float_to_bf16(bits_f32(0x7f800001)), 0x7fc0);
    assert_int_equal(weft_float_to_bf16(bits_f32(0xffffffff)), 0xffff);
    /* bf16 sums round the same way through the kernel */
    {
        uint16_t a[2] = {0x3f80, 0x3f81}, b[2] = {0x3b80, 0x3b80}, d[2]; /* 1 + 2^-8 */
        weft_reduce_local(d, a, b, 2, WEFT_BFLOAT16, WEFT_SUM);
        assert_int_equal(d[0], 0x3f80);
        assert_int_equal(d[1], 0x3f82);
    }
}

/* ---- dtype helpers ------------------------------------------------------------------------- */

static void test_dtype_helpers(void **state)
{
    static const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 2, 4, 8};
    static const char *const names[] = {"int8",    "uint8",    "int32",   "uint32",  "int64",
                                        "uint64",  "float16",  "bfloat16", "float32", "float64"};
    static const char *const ops[] = {"sum", "prod", "min", "max", "avg"};

    (void)state;
    for (int dt = 0; dt < WEFT_NUM_DTYPES; dt++) {
        assert_int_equal(weft_dtype_size((weft_dtype_t)dt), sizes[dt]);
        assert_string_equal(weft_dtype_name((weft_dtype_t)dt), names[dt]);
    }
    for (int op = 0; op < WEFT_NUM_OPS; op++)
        assert_string_equal(weft_op_name((weft_op_t)op), ops[op]);
    assert_int_equal(weft_dtype_size(WEFT_NUM_DTYPES), 0);
    assert_int_equal(weft_dtype_size((weft_dtype_t)-1), 0);
    assert_int_equal(weft_dtype_size((weft_dtype_t)1000), 0);
    assert_string_equal(weft_dtype_name(WEFT_NUM_DTYPES), "invalid");
    assert_string_equal(weft_dtype_name((weft_dtype_t)-1), "invalid");
    assert_string_equal(weft_op_name(WEFT_NUM_OPS), "invalid");
    assert_string_equal(weft_op_name((weft_op_t)-1), "invalid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_dtypes_ops),
        cmocka_unit_test(test_invalid_args_do_nothing),
        cmocka_unit_test(test_integer_wraparound),
        cmocka_unit_test(test_nan_and_infinity),
        cmocka_unit_test(test_16bit_kernels_match_portable),
        cmocka_unit_test(test_avg_finish),
        cmocka_unit_test(test_avg_wide_8bit),
        cmocka_unit_test(test_half_round_trip_exhaustive),
        cmocka_unit_test(test_float_to_half_rounding),
        cmocka_unit_test(test_bf16_conversions),
        cmocka_unit_test(test_dtype_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
