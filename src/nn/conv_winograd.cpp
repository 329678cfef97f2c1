// Winograd F(4x4, 2x2) for 4x4 stride-2 convolutions (see conv_winograd.h).
//
// Notation: the input, zero-padded by 1, is read space-to-depth as z[(r, s, c), u, v] =
// xpad[c, 2u + r, 2v + s] (C' = 4C channels), the weight as w'[o, (r, s, c), a, b] =
// w[o, c, 2a + r, 2b + s] (2x2), and y = z ⋆ w' (stride 1). Output tile (ti, tj) covers
// y[4ti .. 4ti + 3, 4tj .. 4tj + 3] and reads the 5x5 patch of z at (4ti, 4tj). With the 1-D
// matrices Bᵀ (5x5), G (5x2) and Aᵀ (4x5):
//   V[t][ξ][c'] = (Bᵀ d B)_ξ            input transform, d = z's patch of tile t
//   U[ξ][c'][o] = (G w' Gᵀ)_ξ           weight transform
//   M[t][ξ][o]  = Σ_c' V[t][ξ][c'] U[ξ][c'][o]       25 GEMMs (rows t strided by 25)
//   Y_t = Aᵀ M_t A                      output transform (positions past Ho, Wo dropped)
// The backward passes are the adjoints of these linear maps: dM = A dY Aᵀ, dV = dM Uᵀ
// (GEMMs), dz = B dV Bᵀ scattered back (neighbouring patches share a row / column), and
// dU = Vᵀ dM (GEMMs), dw' = Gᵀ dU G. ξ = 5α + β indexes the 25 transformed positions.
//
// Data transforms run on 8 channels at a time (AVX2) in channels-last copies of each image;
// images are split over Soma's threads, and the GEMMs go through Backend::gemm (which splits
// them over the same threads). Every output element is written by one thread, so results
// depend only on the thread count.
#include "nn/conv_winograd.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/cpu/parallel_for.h"
#include "nn/conv_dnnl.h"
#include "soma/parallel.h"

namespace soma::conv {
namespace {

typedef float v8 __attribute__((vector_size(32)));

// Points 0, 1, -1, 2, infinity. Rows of Bᵀ are scaled to integers (the scale moved into G).
constexpr float kBT[5][5] = {
    {2, -1, -2, 1, 0}, {0, 2, 1, -1, 0}, {0, -2, 3, -1, 0}, {0, -1, 0, 1, 0}, {0, 2, -1, -2, 1}};
constexpr float kG[5][2] = {
    {0.5f, 0.0f}, {0.5f, 0.5f}, {1.0f / 6, -1.0f / 6}, {1.0f / 6, 1.0f / 3}, {0.0f, 1.0f}};
constexpr float kAT[4][5] = {{1, 1, 1, 1, 0}, {0, 1, -1, 2, 0}, {0, 1, 1, 4, 0}, {0, 1, -1, 8, 1}};

std::atomic<bool>& flag() {
    static std::atomic<bool> on{[] {
        const char* e = std::getenv("SOMA_CONV_WINOGRAD");
        return !(e && std::strcmp(e, "0") == 0);
    }()};
    return on;
}

std::atomic<uint64_t>& served() {
    static std::atomic<uint64_t> n{0};
    return n;
}

std::atomic<uint64_t>& reused() {
    static std::atomic<uint64_t> n{0};
    return n;
}

bool have_avx2() {
    static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return ok;
}

// Per-thread scratch buffers (kept between calls; slot: which buffer).
float* scratch(int slot, int64_t n) {
    thread_local std::vector<float> bufs[8];
    std::vector<float>& b = bufs[slot];
    if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
    return b.data();
}

struct Plan {
    int64_t n, c, o, h, w, ho, wo;
    int64_t th, tw;  // tiles per column / row
    int64_t hp, wp;  // rows / columns of the padded input that the patches read
    int64_t tiles_img() const { return th * tw; }
    int64_t t_all() const { return n * th * tw; }
    int64_t cp() const { return 4 * c; }
};

Plan plan_of(const ConvGeom& g) {
    Plan p{};
    p.n = g.n;
    p.c = g.c;
    p.o = g.o;
    p.h = g.h;
    p.w = g.w;
    p.ho = g.ho;
    p.wo = g.wo;
    p.th = (g.ho + 3) / 4;
    p.tw = (g.wo + 3) / 4;
    p.hp = 2 * (4 * p.th + 1);
    p.wp = 2 * (4 * p.tw + 1);
    return p;
}

// What this thread's scratch slots 4 (V) and 5 (dM) hold: the transform of which buffer, for
// which geometry (null: something else). Used only inside a TransformReuse scope.
struct Held {
    const float* src = nullptr;
    ConvGeom g{};
};
struct ReuseState {
    int depth = 0;  // open TransformReuse scopes on this thread
    Held v, dm;
};
thread_local ReuseState tl_reuse;

bool same_geom(const ConvGeom& a, const ConvGeom& b) {
    return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w && a.o == b.o && a.kh == b.kh &&
           a.kw == b.kw && a.ho == b.ho && a.wo == b.wo && a.sh == b.sh && a.sw == b.sw &&
           a.ph == b.ph && a.pw == b.pw && a.dh == b.dh && a.dw == b.dw && a.groups == b.groups;
}
// Whether slot `h` already holds the transform of src for g (and reuse is allowed now).
bool holds(const Held& h, const float* src, const ConvGeom& g) {
    const bool yes = tl_reuse.depth > 0 && h.src == src && same_geom(h.g, g);
    if (yes) reused().fetch_add(1, std::memory_order_relaxed);
    return yes;
}

#define SOMA_UNROLL _Pragma("GCC unroll 8")

__attribute__((target("avx2,fma"), always_inline)) inline v8 load8(const float* p) {
    v8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
__attribute__((target("avx2,fma"), always_inline)) inline void store8(float* p, const v8& v) {
    std::memcpy(p, &v, sizeof v);
}

// d[j·ldd + i] = s[i·lds + j] for an 8x8 block (AVX2 unpack / shuffle / lane permute).
__attribute__((target("avx2,fma"), always_inline)) inline void transpose8x8(const float* s,
                                                                            int64_t lds, float* d,
                                                                            int64_t ldd) {
    __m256 r[8], t[8];
    for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(s + k * lds);
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
        r[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
        r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);
        r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
        r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
    }
    for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(d + k * ldd, _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
        _mm256_storeu_ps(d + (k + 4) * ldd, _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
    }
}

// dst[j·ldd + i] = src[i·lds + j] for a rows x cols matrix.
__attribute__((target("avx2,fma"))) void transpose(const float* src, int64_t rows, int64_t cols,
                                                   int64_t lds, float* dst, int64_t ldd) {
    int64_t i = 0;
    for (; i + 8 <= rows; i += 8) {
        int64_t j = 0;
        for (; j + 8 <= cols; j += 8) transpose8x8(src + i * lds + j, lds, dst + j * ldd + i, ldd);
        for (; j < cols; ++j)
            for (int64_t k = i; k < i + 8; ++k) dst[j * ldd + k] = src[k * lds + j];
    }
    for (; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
}

// Every transform and adjoint below is out = L x Lᵀ on one tile, eight lanes at a time:
// out[i][j] = Σ_a Σ_b L[i][a] x[a][b] L[j][b] with L one of the constant matrices (or its
// transpose); unrolled, the zero coefficients fold away.
template <int R, int C>
__attribute__((target("avx2,fma"), always_inline)) inline void sandwich(const float (&L)[R][C],
                                                                        const v8 (&x)[C][C],
                                                                        v8 (&out)[R][R]) {
    v8 m[R][C];
    SOMA_UNROLL for (int i = 0; i < R; ++i) SOMA_UNROLL for (int b = 0; b < C; ++b) {
        v8 acc = x[0][b] * L[i][0];
        SOMA_UNROLL for (int a = 1; a < C; ++a) if (L[i][a] != 0.0f) acc += x[a][b] * L[i][a];
        m[i][b] = acc;
    }
    SOMA_UNROLL for (int i = 0; i < R; ++i) SOMA_UNROLL for (int j = 0; j < R; ++j) {
        v8 acc = m[i][0] * L[j][0];
        SOMA_UNROLL for (int b = 1; b < C; ++b) if (L[j][b] != 0.0f) acc += m[i][b] * L[j][b];
        out[i][j] = acc;
    }
}

template <int R, int C>
struct Mat {
    float v[R][C];
};
template <int R, int C>
constexpr Mat<C, R> transposed(const float (&m)[R][C]) {
    Mat<C, R> t{};
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) t.v[j][i] = m[i][j];
    return t;
}
constexpr Mat<5, 5> kB = transposed(kBT);
constexpr Mat<2, 5> kGT = transposed(kG);
constexpr Mat<5, 4> kA = transposed(kAT);

// xp[hp][wp][C] = x (one image, [C][H][W]) shifted by the padding of 1, zeros elsewhere.
__attribute__((target("avx2,fma"))) void pad_to_channels_last(const Plan& p, const float* x,
                                                              float* xp) {
    std::memset(xp, 0, sizeof(float) * static_cast<size_t>(p.hp * p.wp * p.c));
    // x [C][H·W] -> [H·W][C] in one transpose (few partial blocks), then row by row into xp
    // (p.hp > p.h and p.wp > p.w: the padded patches cover the whole input).
    float* t = scratch(6, p.h * p.w * p.c);
    transpose(x, p.c, p.h * p.w, p.h * p.w, t, p.c);
    for (int64_t i = 0; i < p.h; ++i)
        std::memcpy(xp + ((i + 1) * p.wp + 1) * p.c, t + i * p.w * p.c,
                    sizeof(float) * static_cast<size_t>(p.w * p.c));
}

// V[t0 + t][ξ][c'] for the tiles of one image, from its padded channels-last copy.
__attribute__((target("avx2,fma"))) void input_transform(const Plan& p, const float* xp, int64_t t0,
                                                         float* V) {
    const int64_t C = p.c, CP = p.cp();
    for (int64_t ti = 0; ti < p.th; ++ti)
        for (int64_t tj = 0; tj < p.tw; ++tj) {
            const int64_t t = t0 + ti * p.tw + tj;
            for (int rs = 0; rs < 4; ++rs) {
                const int r = rs >> 1, s = rs & 1;
                for (int64_t cb = 0; cb < C; cb += 8) {
                    v8 d[5][5], out[5][5];
                    SOMA_UNROLL for (int u = 0; u < 5; ++u) SOMA_UNROLL for (int v = 0; v < 5;
                                                                             ++v) d[u][v] =
                        load8(xp + ((2 * (4 * ti + u) + r) * p.wp + 2 * (4 * tj + v) + s) * C + cb);
                    sandwich(kBT, d, out);  // Bᵀ d B
                    SOMA_UNROLL for (int a = 0; a < 5; ++a) SOMA_UNROLL for (int b = 0; b < 5; ++b)
                        store8(V + (t * 25 + a * 5 + b) * CP + rs * C + cb, out[a][b]);
                }
            }
        }
}

// dzp[hp][wp][C] (zeroed here) = the adjoint of input_transform for one image: B dV Bᵀ per
// tile, patches added where they overlap.
__attribute__((target("avx2,fma"))) void input_transform_adjoint(const Plan& p, const float* dV,
                                                                 int64_t t0, float* dzp) {
    const int64_t C = p.c, CP = p.cp();
    std::memset(dzp, 0, sizeof(float) * static_cast<size_t>(p.hp * p.wp * C));
    for (int64_t ti = 0; ti < p.th; ++ti)
        for (int64_t tj = 0; tj < p.tw; ++tj) {
            const int64_t t = t0 + ti * p.tw + tj;
            for (int rs = 0; rs < 4; ++rs) {
                const int r = rs >> 1, s = rs & 1;
                for (int64_t cb = 0; cb < C; cb += 8) {
                    v8 e[5][5], out[5][5];
                    SOMA_UNROLL for (int a = 0; a < 5; ++a) SOMA_UNROLL for (int b = 0; b < 5; ++b)
                        e[a][b] = load8(dV + (t * 25 + a * 5 + b) * CP + rs * C + cb);
                    sandwich(kB.v, e, out);  // B dV Bᵀ
                    SOMA_UNROLL for (int u = 0; u < 5; ++u)
                        SOMA_UNROLL for (int v = 0; v < 5; ++v) {
                        float* q =
                            dzp + ((2 * (4 * ti + u) + r) * p.wp + 2 * (4 * tj + v) + s) * C + cb;
                        store8(q, load8(q) + out[u][v]);
                    }
                }
            }
        }
}

// t[c][i] += b[c] for an image t [C][plane].
__attribute__((target("avx2,fma"))) void add_channel_bias(const float* b, int64_t c, int64_t plane,
                                                          float* t) {
    for (int64_t k = 0; k < c; ++k) {
        const float bk = b[k];
        float* row = t + k * plane;
        for (int64_t i = 0; i < plane; ++i) row[i] += bk;
    }
}

// dx (one image, [C][H][W]) = dzp at the unpadded positions, + b[c] when b is set.
__attribute__((target("avx2,fma"))) void channels_last_to_image(const Plan& p, const float* dzp,
                                                                const float* b, float* dx) {
    // Rows of dzp into one [H·W][C] block (p.hp > p.h, p.wp > p.w), then one transpose.
    float* t = scratch(6, p.h * p.w * p.c);
    for (int64_t i = 0; i < p.h; ++i)
        std::memcpy(t + i * p.w * p.c, dzp + ((i + 1) * p.wp + 1) * p.c,
                    sizeof(float) * static_cast<size_t>(p.w * p.c));
    transpose(t, p.h * p.w, p.c, p.c, dx, p.h * p.w);
    if (b) add_channel_bias(b, p.c, p.h * p.w, dx);
}

// U[ξ][c'][o] for input channels [c0, c1), from wt[C·16][O].
__attribute__((target("avx2,fma"))) void weight_transform(const Plan& p, const float* wt,
                                                          int64_t c0, int64_t c1, float* U) {
    const int64_t C = p.c, O = p.o, CP = p.cp();
    for (int64_t c = c0; c < c1; ++c)
        for (int rs = 0; rs < 4; ++rs) {
            const int r = rs >> 1, s = rs & 1;
            for (int64_t ob = 0; ob < O; ob += 8) {
                v8 k[2][2], out[5][5];
                SOMA_UNROLL for (int a = 0; a < 2; ++a) SOMA_UNROLL for (int b = 0; b < 2; ++b)
                    k[a][b] = load8(wt + (c * 16 + (2 * a + r) * 4 + 2 * b + s) * O + ob);
                sandwich(kG, k, out);  // G w' Gᵀ
                SOMA_UNROLL for (int a = 0; a < 5; ++a) SOMA_UNROLL for (int b = 0; b < 5; ++b)
                    store8(U + ((a * 5 + b) * CP + rs * C + c) * O + ob, out[a][b]);
            }
        }
}

// dwt[C·16][O] for input channels [c0, c1) = Gᵀ dU G, the adjoint of weight_transform.
__attribute__((target("avx2,fma"))) void weight_transform_adjoint(const Plan& p, const float* dU,
                                                                  int64_t c0, int64_t c1,
                                                                  float* dwt) {
    const int64_t C = p.c, O = p.o, CP = p.cp();
    for (int64_t c = c0; c < c1; ++c)
        for (int rs = 0; rs < 4; ++rs) {
            const int r = rs >> 1, s = rs & 1;
            for (int64_t ob = 0; ob < O; ob += 8) {
                v8 e[5][5], out[2][2];
                SOMA_UNROLL for (int a = 0; a < 5; ++a) SOMA_UNROLL for (int b = 0; b < 5; ++b)
                    e[a][b] = load8(dU + ((a * 5 + b) * CP + rs * C + c) * O + ob);
                sandwich(kGT.v, e, out);  // Gᵀ dU G
                SOMA_UNROLL for (int i = 0; i < 2; ++i) SOMA_UNROLL for (int j = 0; j < 2; ++j)
                    store8(dwt + (c * 16 + (2 * i + r) * 4 + 2 * j + s) * O + ob, out[i][j]);
            }
        }
}

// y (one image, [O][Ho][Wo]) = Aᵀ M A per tile, + b[o] when b is set; yt: [Ho·Wo][O] scratch.
__attribute__((target("avx2,fma"))) void output_transform(const Plan& p, const float* M, int64_t t0,
                                                          const float* b, float* yt, float* y) {
    const int64_t O = p.o;
    for (int64_t ti = 0; ti < p.th; ++ti)
        for (int64_t tj = 0; tj < p.tw; ++tj) {
            const int64_t t = t0 + ti * p.tw + tj;
            const int64_t ni = std::min<int64_t>(4, p.ho - 4 * ti);
            const int64_t nj = std::min<int64_t>(4, p.wo - 4 * tj);
            for (int64_t ob = 0; ob < O; ob += 8) {
                v8 e[5][5], out[4][4];
                SOMA_UNROLL for (int a = 0; a < 5; ++a) SOMA_UNROLL for (int bb = 0; bb < 5; ++bb)
                    e[a][bb] = load8(M + (t * 25 + a * 5 + bb) * O + ob);
                sandwich(kAT, e, out);  // Aᵀ M A
                for (int64_t i = 0; i < ni; ++i)
                    for (int64_t j = 0; j < nj; ++j)
                        store8(yt + ((4 * ti + i) * p.wo + 4 * tj + j) * O + ob, out[i][j]);
            }
        }
    const int64_t plane = p.ho * p.wo;
    transpose(yt, plane, O, O, y, plane);
    if (b) add_channel_bias(b, O, plane, y);
}

// dM[t0 + t][ξ][o] = A dY Aᵀ per tile of one image (dy: [O][Ho][Wo]); dyt: [Ho·Wo][O] scratch.
__attribute__((target("avx2,fma"))) void output_transform_adjoint(const Plan& p, const float* dy,
                                                                  int64_t t0, float* dyt,
                                                                  float* dM) {
    const int64_t O = p.o, plane = p.ho * p.wo;
    transpose(dy, O, plane, plane, dyt, O);
    const v8 zero = {};
    for (int64_t ti = 0; ti < p.th; ++ti)
        for (int64_t tj = 0; tj < p.tw; ++tj) {
            const int64_t t = t0 + ti * p.tw + tj;
            const int64_t ni = std::min<int64_t>(4, p.ho - 4 * ti);
            const int64_t nj = std::min<int64_t>(4, p.wo - 4 * tj);
            for (int64_t ob = 0; ob < O; ob += 8) {
                v8 e[4][4], out[5][5];
                SOMA_UNROLL for (int i = 0; i < 4; ++i) SOMA_UNROLL for (int j = 0; j < 4; ++j)
                    e[i][j] = (i < ni && j < nj)
                                  ? load8(dyt + ((4 * ti + i) * p.wo + 4 * tj + j) * O + ob)
                                  : zero;
                sandwich(kA.v, e, out);  // A dY Aᵀ
                SOMA_UNROLL for (int a = 0; a < 5; ++a) SOMA_UNROLL for (int bb = 0; bb < 5; ++bb)
                    store8(dM + (t * 25 + a * 5 + bb) * O + ob, out[a][bb]);
            }
        }
}

// U from w (through a transposed copy), split over input channels.
void weights_to_u(const Plan& p, const float* w, float* U) {
    float* wt = scratch(0, p.c * 16 * p.o);
    transpose(w, p.o, p.c * 16, p.c * 16, wt, p.o);
    cpu::parallel_for(p.c, 4, [&](int64_t lo, int64_t hi) { weight_transform(p, wt, lo, hi, U); });
}

// Images [lo, hi) -> their rows of V.
void images_to_v(const Plan& p, const float* x, int64_t lo, int64_t hi, float* V) {
    const int64_t in_img = p.c * p.h * p.w;
    float* xp = scratch(1, p.hp * p.wp * p.c);
    for (int64_t n = lo; n < hi; ++n) {
        pad_to_channels_last(p, x + n * in_img, xp);
        input_transform(p, xp, n * p.tiles_img(), V);
    }
}

// Output gradients of images [lo, hi) -> their rows of dM.
void grads_to_dm(const Plan& p, const float* dy, int64_t lo, int64_t hi, float* dM) {
    const int64_t out_img = p.o * p.ho * p.wo;
    float* dyt = scratch(2, p.ho * p.wo * p.o);
    for (int64_t n = lo; n < hi; ++n)
        output_transform_adjoint(p, dy + n * out_img, n * p.tiles_img(), dyt, dM);
}

// Rows [r0, r1) of the 25 GEMMs g describes (single-threaded: called inside a parallel region,
// or on one thread).
void gemm_rows(Backend& be, const Backend::Gemm& g, int64_t r0, int64_t r1) {
    Backend::Gemm s = g;
    s.m = r1 - r0;
    s.a = static_cast<const float*>(g.a) + (g.trans_a ? r0 : r0 * g.lda);
    s.c = static_cast<float*>(g.c) + r0 * g.ldc;
    be.gemm(s);
}

// A pass's plan and its three per-thread buffers: slot 3 holds U (or dU), slot 4 V (or dV),
// slot 5 M (or dM).
struct Pass {
    Plan p;
    int64_t T, CP, O, tpi;
    float *u, *v, *m;
};
Pass begin_pass(const ConvGeom& g) {
    Pass s{};
    s.p = plan_of(g);
    s.T = s.p.t_all();
    s.CP = s.p.cp();
    s.O = s.p.o;
    s.tpi = s.p.tiles_img();
    s.u = scratch(3, 25 * s.CP * s.O);
    s.v = scratch(4, 25 * s.T * s.CP);
    s.m = scratch(5, 25 * s.T * s.O);
    return s;
}

// The 25 GEMMs C_ξ = op(A_ξ) op(B_ξ), [m, n], ξ-th matrices `stride_*` floats apart.
Backend::Gemm batched(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
                      int64_t lda, int64_t sa, const float* b, int64_t ldb, int64_t sb, float* c,
                      int64_t ldc, int64_t sc) {
    return {.trans_a = ta,
            .trans_b = tb,
            .m = m,
            .n = n,
            .k = k,
            .batch = 25,
            .a = a,
            .lda = lda,
            .stride_a = sa,
            .b = b,
            .ldb = ldb,
            .stride_b = sb,
            .c = c,
            .ldc = ldc,
            .stride_c = sc};
}

}  // namespace

TransformReuse::TransformReuse() {
    if (tl_reuse.depth++ == 0) tl_reuse.v = tl_reuse.dm = {};
}
TransformReuse::~TransformReuse() {
    if (--tl_reuse.depth == 0) tl_reuse.v = tl_reuse.dm = {};
}

bool use_winograd() { return flag().load(std::memory_order_relaxed); }
void set_use_winograd(bool on) { flag() = on; }
uint64_t winograd_calls() { return served().load(); }
uint64_t winograd_reuses() { return reused().load(); }

bool winograd_applies(const ConvGeom& g) {
    if (!use_winograd() || !use_dnnl() || !have_avx2()) return false;
    if (g.kh != 4 || g.kw != 4 || g.sh != 2 || g.sw != 2 || g.ph != 1 || g.pw != 1 || g.dh != 1 ||
        g.dw != 1 || g.groups != 1)
        return false;
    if (g.c % 8 != 0 || g.o % 8 != 0 || g.c < 16 || g.o < 16 || g.n < 1) return false;
    if (g.h < 2 || g.w < 2 || g.ho != (g.h - 2) / 2 + 1 || g.wo != (g.w - 2) / 2 + 1) return false;
    // V and M of the whole batch live in per-thread scratch (kept between calls): past 64 MB
    // the geometry goes to oneDNN, which works image by image.
    constexpr int64_t kMaxScratchFloats = int64_t{16} << 20;
    const int64_t tiles = g.n * ((g.ho + 3) / 4) * ((g.wo + 3) / 4);
    return 25 * tiles * (4 * g.c + g.o) <= kMaxScratchFloats;
}

// Threads: one parallel region per pass over the images (or rows) — each thread transforms its
// images, runs its rows of the 25 GEMMs single-threaded and transforms them back — plus one
// for the weight transform: a few wake-ups per pass, where per-GEMM threading took dozens and,
// on a busy machine, more time than the GEMMs.
namespace {

// The forward pass (src = x, dst = y) or its adjoint, the input gradient (src = dy, dst = dx):
// transform src per image, 25 GEMMs with U (transposed for the adjoint), transform back.
void data_pass(Backend& be, const ConvGeom& g, bool adjoint, const float* src, const float* w,
               const float* b, float* dst) {
    const Pass s = begin_pass(g);
    const Plan& p = s.p;
    weights_to_u(p, w, s.u);
    // forward: M_ξ [T, O] = V_ξ [T, C'] · U_ξ [C', O];  adjoint: dV_ξ [T, C'] = dM_ξ · U_ξᵀ
    const Backend::Gemm gm = adjoint ? batched(false, true, s.T, s.CP, s.O, s.m, 25 * s.O, s.O, s.u,
                                               s.O, s.CP * s.O, s.v, 25 * s.CP, s.CP)
                                     : batched(false, false, s.T, s.O, s.CP, s.v, 25 * s.CP, s.CP,
                                               s.u, s.O, s.CP * s.O, s.m, 25 * s.O, s.O);
    Held& in = adjoint ? tl_reuse.dm : tl_reuse.v;  // what src's transform goes into
    const bool have = holds(in, src, g);
    const int64_t dst_img = adjoint ? p.c * p.h * p.w : p.o * p.ho * p.wo;
    cpu::parallel_for(p.n, 1, [&](int64_t lo, int64_t hi) {
        if (!have) {
            if (adjoint)
                grads_to_dm(p, src, lo, hi, s.m);
            else
                images_to_v(p, src, lo, hi, s.v);
        }
        gemm_rows(be, gm, lo * s.tpi, hi * s.tpi);
        float* work = adjoint ? scratch(1, p.hp * p.wp * p.c) : scratch(2, p.ho * p.wo * p.o);
        for (int64_t n = lo; n < hi; ++n) {
            if (adjoint) {
                input_transform_adjoint(p, s.v, n * s.tpi, work);
                channels_last_to_image(p, work, b, dst + n * dst_img);
            } else {
                output_transform(p, s.m, n * s.tpi, b, work, dst + n * dst_img);
            }
        }
    });
    // Slot 4 now holds dV (adjoint) or V, slot 5 dM or M: only src's transform is reusable.
    tl_reuse.v = {};
    tl_reuse.dm = {};
    in = {src, g};
    served().fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

bool wino_conv2d_forward(Backend& be, const ConvGeom& g, const float* x, const float* w,
                         const float* b, float* y) {
    if (!winograd_applies(g)) return false;
    data_pass(be, g, false, x, w, b, y);
    return true;
}

bool wino_conv2d_input_grad(Backend& be, const ConvGeom& g, const float* dy, const float* w,
                            const float* b, float* dx) {
    if (!winograd_applies(g)) return false;
    data_pass(be, g, true, dy, w, b, dx);
    return true;
}

bool wino_conv2d_weight_grad(Backend& be, const ConvGeom& g, const float* x, const float* dy,
                             float* dw) {
    if (!winograd_applies(g)) return false;
    const Pass s = begin_pass(g);
    const Plan& p = s.p;
    const bool have_v = holds(tl_reuse.v, x, g), have_dm = holds(tl_reuse.dm, dy, g);
    if (!have_v || !have_dm)
        cpu::parallel_for(p.n, 1, [&](int64_t lo, int64_t hi) {
            if (!have_v) images_to_v(p, x, lo, hi, s.v);
            if (!have_dm) grads_to_dm(p, dy, lo, hi, s.m);
        });
    tl_reuse.v = {x, g};
    tl_reuse.dm = {dy, g};
    // dU_ξ [C', O] = V_ξᵀ · dM_ξ [T, O], rows of dU split over the threads.
    const Backend::Gemm gm = batched(true, false, s.CP, s.O, s.T, s.v, 25 * s.CP, s.CP, s.m,
                                     25 * s.O, s.O, s.u, s.O, s.CP * s.O);
    cpu::parallel_for(s.CP, 8, [&](int64_t lo, int64_t hi) { gemm_rows(be, gm, lo, hi); });
    float* dwt = scratch(0, p.c * 16 * s.O);
    cpu::parallel_for(
        p.c, 4, [&](int64_t lo, int64_t hi) { weight_transform_adjoint(p, s.u, lo, hi, dwt); });
    transpose(dwt, p.c * 16, s.O, s.O, dw, p.c * 16);
    served().fetch_add(1, std::memory_order_relaxed);
    return true;
}

}  // namespace soma::conv
