// Max pooling and per-channel sums (see conv_kernels.h).
//
// Max pooling scans each window in row-major order: the first element is the running maximum,
// a later one replaces it when strictly larger or NaN (so ties keep the first position and NaN
// propagates, as PyTorch). The 2x2 stride-2 window without padding (by far the most common) has
// its own path: per output, the winner of each row pair, then of the two rows — the same order
// and the same winner, in a loop the compiler vectorises. Planes run on the worker pool.
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "backend/cpu/parallel_for.h"
#include "backend/cpu/row_sum.h"
#include "backend/cpu/select_bits.h"
#include "nn/conv_kernels.h"

namespace soma::conv {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

using cpu::select_bits;

// Elements per parallel chunk: enough work that a wake-up of the pool pays off.
constexpr int64_t kGrainElements = 1 << 15;

int64_t plane_grain(int64_t plane_elems) {
    return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, plane_elems));
}

// The 2x2 stride-2 winner of window j of rows r0, r1 (see the file comment): value and flat
// index (base = the flat index of r0[0]).
template <class T>
inline void window_2x2(const T* r0, const T* r1, int64_t j, int64_t w, int64_t base, T& y,
                       int64_t& idx) {
    const T a0 = r0[2 * j], a1 = r0[2 * j + 1], b0 = r1[2 * j], b1 = r1[2 * j + 1];
    const bool ta = (a1 > a0) | (a1 != a1), tb = (b1 > b0) | (b1 != b1);
    const T a = select_bits(ta, a1, a0), b = select_bits(tb, b1, b0);
    const bool t = (b > a) | (b != b);
    y = select_bits(t, b, a);
    const int64_t it = t, ia = ta, ib = tb;  // 0/1, arithmetic: no branches
    idx = base + it * w + 2 * j + ((it & ib) | ((1 - it) & ia));
}

#if defined(__SSE2__)
// Four windows at once: even/odd columns split by shuffles, the same comparisons as lanes.
inline int64_t rows_2x2_sse(const float* r0, const float* r1, int64_t wo, int64_t w, int64_t base,
                            float* y, int64_t* idx) {
    const __m128i col0 = _mm_setr_epi32(0, 2, 4, 6), one = _mm_set1_epi32(1);
    const __m128i wv = _mm_set1_epi32(static_cast<int32_t>(w)), zero = _mm_setzero_si128();
    int64_t j = 0;
    for (; j + 4 <= wo; j += 4) {
        const __m128 p0 = _mm_loadu_ps(r0 + 2 * j), p1 = _mm_loadu_ps(r0 + 2 * j + 4);
        const __m128 q0 = _mm_loadu_ps(r1 + 2 * j), q1 = _mm_loadu_ps(r1 + 2 * j + 4);
        const __m128 a0 = _mm_shuffle_ps(p0, p1, 0x88), a1 = _mm_shuffle_ps(p0, p1, 0xDD);
        const __m128 b0 = _mm_shuffle_ps(q0, q1, 0x88), b1 = _mm_shuffle_ps(q0, q1, 0xDD);
        const __m128 ta = _mm_or_ps(_mm_cmpgt_ps(a1, a0), _mm_cmpunord_ps(a1, a1));
        const __m128 tb = _mm_or_ps(_mm_cmpgt_ps(b1, b0), _mm_cmpunord_ps(b1, b1));
        const __m128 a = _mm_or_ps(_mm_and_ps(ta, a1), _mm_andnot_ps(ta, a0));
        const __m128 b = _mm_or_ps(_mm_and_ps(tb, b1), _mm_andnot_ps(tb, b0));
        const __m128 t = _mm_or_ps(_mm_cmpgt_ps(b, a), _mm_cmpunord_ps(b, b));
        _mm_storeu_ps(y + j, _mm_or_ps(_mm_and_ps(t, b), _mm_andnot_ps(t, a)));
        const __m128i ti = _mm_castps_si128(t);
        const __m128i sel = _mm_or_si128(_mm_and_si128(ti, _mm_castps_si128(tb)),
                                         _mm_andnot_si128(ti, _mm_castps_si128(ta)));
        __m128i k = _mm_add_epi32(col0, _mm_set1_epi32(static_cast<int32_t>(2 * j)));
        k = _mm_add_epi32(k, _mm_and_si128(sel, one));
        k = _mm_add_epi32(k, _mm_and_si128(ti, wv));
        // Plane-relative indices are small and non-negative: widen with zeros, add the base.
        const __m128i bv = _mm_set1_epi64x(base);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(idx + j),
                         _mm_add_epi64(_mm_unpacklo_epi32(k, zero), bv));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(idx + j + 2),
                         _mm_add_epi64(_mm_unpackhi_epi32(k, zero), bv));
    }
    return j;
}
#endif

// 2x2 windows, stride 2, no padding or dilation: y[i, j] over x[2i .. 2i+1, 2j .. 2j+1].
template <class T>
void max_pool_2x2(const MaxPoolGeom& g, const T* x, T* y, int64_t* idx) {
    const int64_t in_plane = g.h * g.w, out_plane = g.ho * g.wo, w = g.w, wo = g.wo, ho = g.ho;
    cpu::parallel_for(g.planes, plane_grain(in_plane), [=](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
            const T* xp = x + p * in_plane;
            for (int64_t i = 0; i < ho; ++i) {
                const T* r0 = xp + 2 * i * w;
                const T* r1 = r0 + w;
                T* yr = y + p * out_plane + i * wo;
                int64_t* ir = idx + p * out_plane + i * wo;
                const int64_t base = 2 * i * w;
                int64_t j = 0;
#if defined(__SSE2__)
                if constexpr (std::is_same_v<T, float>)
                    j = rows_2x2_sse(r0, r1, wo, w, base, yr, ir);
#endif
                for (; j < wo; ++j) window_2x2(r0, r1, j, w, base, yr[j], ir[j]);
            }
        }
    });
}

}  // namespace

template <class T>
void channel_sum(int64_t n, int64_t c, int64_t inner, const T* x, T* out) {
    // Per row: eight partial sums (vectorised); rows combined in double per channel.
    cpu::parallel_for(c, plane_grain(n * inner), [&](int64_t c0, int64_t c1) {
        for (int64_t j = c0; j < c1; ++j) {
            double s = 0;
            for (int64_t i = 0; i < n; ++i) s += cpu::row_sum(x + (i * c + j) * inner, inner);
            out[j] = static_cast<T>(s);
        }
    });
}

template <class T>
void max_pool_forward(const MaxPoolGeom& g, const T* x, T* y, int64_t* idx) {
    if (g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.dh == 1 &&
        g.dw == 1 && 2 * g.ho <= g.h && 2 * g.wo <= g.w)
        return max_pool_2x2(g, x, y, idx);
    const int64_t in_plane = g.h * g.w, out_plane = g.ho * g.wo;
    const int64_t ekh = (g.kh - 1) * g.dh + 1, ekw = (g.kw - 1) * g.dw + 1;  // dilated extents
    // Output columns [jlo, jhi) have their whole window inside the input's columns.
    const int64_t jlo = std::min(ceil_div(g.pw, g.sw), g.wo);
    const int64_t jhi =
        g.w - ekw + g.pw < 0 ? jlo : std::clamp((g.w - ekw + g.pw) / g.sw + 1, jlo, g.wo);
    // A window's value: the first valid element, replaced by any larger one or a NaN (NaN
    // propagates as in PyTorch; `v != v` is the NaN test). Padding never wins (it is -inf).
    auto edge = [&](const T* xp, int64_t hs, int64_t ws, T& best, int64_t& bi) {
        bi = -1;
        best = -std::numeric_limits<T>::infinity();
        for (int64_t a = 0; a < g.kh; ++a) {
            const int64_t ih = hs + a * g.dh;
            if (ih < 0 || ih >= g.h) continue;
            for (int64_t b = 0; b < g.kw; ++b) {
                const int64_t iw = ws + b * g.dw;
                if (iw < 0 || iw >= g.w) continue;
                const T v = xp[ih * g.w + iw];
                if (bi < 0 || v > best || v != v) {
                    best = v;
                    bi = ih * g.w + iw;
                }
            }
        }
        if (bi < 0) bi = 0;  // unreachable with valid pooling arguments
    };
    cpu::parallel_for(g.planes, plane_grain(in_plane), [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
            const T* xp = x + p * in_plane;
            T* yp = y + p * out_plane;
            int64_t* ip = idx + p * out_plane;
            for (int64_t i = 0; i < g.ho; ++i) {
                const int64_t hs = i * g.sh - g.ph;
                T* yr = yp + i * g.wo;
                int64_t* ir = ip + i * g.wo;
                const bool rows_inside = hs >= 0 && hs + ekh <= g.h;
                const int64_t lo = rows_inside ? jlo : g.wo, hi = rows_inside ? jhi : g.wo;
                for (int64_t j = 0; j < lo; ++j) edge(xp, hs, j * g.sw - g.pw, yr[j], ir[j]);
                if (lo < hi) {
                    // Interior: window offset outermost, output column innermost, branch-free.
                    // Window (i, j) starts at input index base + j sw.
                    const int64_t base = hs * g.w - g.pw, sw = g.sw;
                    for (int64_t j = lo; j < hi; ++j) {
                        ir[j] = base + j * sw;
                        yr[j] = xp[ir[j]];
                    }
                    for (int64_t a = 0; a < g.kh; ++a) {
                        for (int64_t b = 0; b < g.kw; ++b) {
                            if (a == 0 && b == 0) continue;
                            const int64_t off = base + a * g.dh * g.w + b * g.dw;
                            for (int64_t j = lo; j < hi; ++j) {
                                const int64_t k = off + j * sw;
                                const T v = xp[k];
                                const bool take = (v > yr[j]) | (v != v);
                                const int64_t m = -static_cast<int64_t>(take);
                                yr[j] = select_bits(take, v, yr[j]);
                                ir[j] = (k & m) | (ir[j] & ~m);
                            }
                        }
                    }
                }
                for (int64_t j = std::max(hi, lo); j < g.wo; ++j)
                    edge(xp, hs, j * g.sw - g.pw, yr[j], ir[j]);
            }
        }
    });
}

template <class T>
void max_pool_scatter(int64_t planes, int64_t in_plane, int64_t out_plane, const T* dy,
                      const int64_t* idx, T* dx) {
    // Planes are independent (an index never leaves its plane), so they split across threads;
    // within a plane the adds run in output order (overlapping windows add up deterministically).
    cpu::parallel_for(planes, plane_grain(in_plane), [&](int64_t p0, int64_t p1) {
        std::fill(dx + p0 * in_plane, dx + p1 * in_plane, T(0));
        for (int64_t p = p0; p < p1; ++p) {
            T* xp = dx + p * in_plane;
            const T* yp = dy + p * out_plane;
            const int64_t* ip = idx + p * out_plane;
            for (int64_t j = 0; j < out_plane; ++j) xp[ip[j]] += yp[j];
        }
    });
}

template <class T>
void max_pool_gather(int64_t planes, int64_t in_plane, int64_t out_plane, const T* x,
                     const int64_t* idx, T* y) {
    cpu::parallel_for(planes, plane_grain(in_plane), [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
            const T* xp = x + p * in_plane;
            T* yp = y + p * out_plane;
            const int64_t* ip = idx + p * out_plane;
            for (int64_t j = 0; j < out_plane; ++j) yp[j] = xp[ip[j]];
        }
    });
}

#define SOMA_POOL_INSTANTIATE(T)                                                                \
    template void channel_sum<T>(int64_t, int64_t, int64_t, const T*, T*);                      \
    template void max_pool_forward<T>(const MaxPoolGeom&, const T*, T*, int64_t*);              \
    template void max_pool_scatter<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*); \
    template void max_pool_gather<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*);
SOMA_POOL_INSTANTIATE(float)
SOMA_POOL_INSTANTIATE(double)
#undef SOMA_POOL_INSTANTIATE

}  // namespace soma::conv
