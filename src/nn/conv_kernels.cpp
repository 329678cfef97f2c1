// Convolution and pooling kernels (see conv_kernels.h).
//
// Convolution lowers to GEMM with im2col: for one image, cols[(c, a, b), (i, j)] =
// x[c, i sh - ph + a dh, j sw - pw + b dw] (0 outside), a [C kh kw, Ho Wo] matrix. Then, per
// group (rows of w and cols split in `groups` contiguous blocks):
//     forward       y[n]  = W · cols                  [O, Ho Wo]
//     input grad    cols  = Wᵀ · dy[n];  dx[n] = col2im(cols)   (col2im adds overlaps)
//     weight grad   dW   += dy[n] · colsᵀ
// Several images share one GEMM (their columns side by side; see chunk_images).
#include "nn/conv_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backend/cpu/parallel_for.h"
#include "nn/conv_dnnl.h"
#include "nn/conv_winograd.h"

namespace soma::conv {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The range [lo, hi) of output columns j whose input column j * s + off lies in [0, in).
void valid_range(int64_t in, int64_t out, int64_t s, int64_t off, int64_t& lo, int64_t& hi) {
    lo = off >= 0 ? 0 : ceil_div(-off, s);
    hi = in - off <= 0 ? 0 : ceil_div(in - off, s);
    lo = std::min(lo, out);
    hi = std::clamp(hi, lo, out);
}

// x [C, H, W] -> cols [C kh kw, Ho Wo], row r of cols starting at cols + r ld (ld >= Ho Wo: the
// columns of several images sit side by side).
template <class T>
void im2col(const ConvGeom& g, const T* x, T* cols, int64_t ld) {
    for (int64_t c = 0; c < g.c; ++c) {
        const T* xc = x + c * g.h * g.w;
        for (int64_t a = 0; a < g.kh; ++a) {
            for (int64_t b = 0; b < g.kw; ++b) {
                T* row = cols + ((c * g.kh + a) * g.kw + b) * ld;
                const int64_t off_w = b * g.dw - g.pw;
                int64_t lo, hi;
                valid_range(g.w, g.wo, g.sw, off_w, lo, hi);
                for (int64_t i = 0; i < g.ho; ++i) {
                    T* dst = row + i * g.wo;
                    const int64_t ih = i * g.sh - g.ph + a * g.dh;
                    if (ih < 0 || ih >= g.h) {
                        std::fill(dst, dst + g.wo, T(0));
                        continue;
                    }
                    const T* src = xc + ih * g.w;  // dst[j] = src[j sw + off_w]
                    std::fill(dst, dst + lo, T(0));
                    if (g.sw == 1 && hi > lo)
                        std::memcpy(dst + lo, src + lo + off_w, (hi - lo) * sizeof(T));
                    else if (g.sw != 1)
                        for (int64_t j = lo; j < hi; ++j) dst[j] = src[j * g.sw + off_w];
                    std::fill(dst + hi, dst + g.wo, T(0));
                }
            }
        }
    }
}

// dx [C, H, W] = col2im(cols [C kh kw, Ho Wo]) (dx overwritten; overlapping taps add); rows of
// cols ld apart as in im2col.
template <class T>
void col2im(const ConvGeom& g, const T* cols, T* dx, int64_t ld) {
    std::fill(dx, dx + g.c * g.h * g.w, T(0));
    for (int64_t c = 0; c < g.c; ++c) {
        T* xc = dx + c * g.h * g.w;
        for (int64_t a = 0; a < g.kh; ++a) {
            for (int64_t b = 0; b < g.kw; ++b) {
                const T* row = cols + ((c * g.kh + a) * g.kw + b) * ld;
                const int64_t off_w = b * g.dw - g.pw;
                int64_t lo, hi;
                valid_range(g.w, g.wo, g.sw, off_w, lo, hi);
                for (int64_t i = 0; i < g.ho; ++i) {
                    const int64_t ih = i * g.sh - g.ph + a * g.dh;
                    if (ih < 0 || ih >= g.h) continue;
                    const T* src = row + i * g.wo;
                    T* dst = xc + ih * g.w;  // dst[j sw + off_w] += src[j]
                    if (g.sw == 1)
                        for (int64_t j = lo; j < hi; ++j) dst[j + off_w] += src[j];
                    else
                        for (int64_t j = lo; j < hi; ++j) dst[j * g.sw + off_w] += src[j];
                }
            }
        }
    }
}

template <class T>
constexpr DType dtype_v() {
    return std::is_same_v<T, float> ? DType::float32 : DType::float64;
}

// The im2col buffer: one per thread and type, reused across calls (conv runs every step with
// the same sizes). Buffers above kKeepBytes are not cached, so one huge conv does not pin memory.
template <class T, int Slot = 0>
class Scratch {
  public:
    explicit Scratch(int64_t n) {
        constexpr int64_t kKeepBytes = int64_t{64} << 20;
        thread_local std::vector<T> cache;
        std::vector<T>& buf = n * static_cast<int64_t>(sizeof(T)) <= kKeepBytes ? cache : own_;
        if (static_cast<int64_t>(buf.size()) < n) buf.resize(n);
        data_ = buf.data();
    }
    T* data() const { return data_; }

  private:
    std::vector<T> own_;
    T* data_ = nullptr;
};

// Images are processed in chunks of nb: the columns of nb images sit side by side in one
// [C kh kw, nb Ho Wo] matrix, so each GEMM is nb times wider (one image's GEMM is often tiny:
// [64, 16] x [16, 196] for a 4x4 conv on one channel). The chunk keeps the column buffer under
// kColsBudget elements.
constexpr int64_t kColsBudget = int64_t{4} << 20;

int64_t chunk_images(const ConvGeom& g) {
    const int64_t per_image = std::max<int64_t>(1, g.c * g.kh * g.kw * g.ho * g.wo);
    return std::clamp<int64_t>(kColsBudget / per_image, 1, std::max<int64_t>(g.n, 1));
}

// im2col of nb consecutive images into one column matrix (image n at column n Ho Wo), the
// images split over the threads when there is enough work.
template <class T>
void im2col_images(const ConvGeom& g, const T* x, int64_t nb, T* cols, int64_t ld) {
    const int64_t in_img = g.c * g.h * g.w, plane = g.ho * g.wo;
    const int64_t per_image = std::max<int64_t>(1, g.c * g.kh * g.kw * plane);
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / per_image);
    cpu::parallel_for(nb, grain, [&](int64_t lo, int64_t hi) {
        for (int64_t n = lo; n < hi; ++n) im2col(g, x + n * in_img, cols + n * plane, ld);
    });
}

// t [nb, O, P] <-> m [O, nb P] (the GEMM's layout), with + b[o] on the way into t when b is set.
template <class T>
void images_to_rows(const T* t, int64_t nb, int64_t o, int64_t p, T* m) {
    for (int64_t n = 0; n < nb; ++n)
        for (int64_t c = 0; c < o; ++c)
            std::memcpy(m + c * nb * p + n * p, t + (n * o + c) * p, p * sizeof(T));
}
template <class T>
void rows_to_images(const T* m, int64_t nb, int64_t o, int64_t p, const T* b, T* t) {
    for (int64_t n = 0; n < nb; ++n)
        for (int64_t c = 0; c < o; ++c) {
            const T* src = m + c * nb * p + n * p;
            T* dst = t + (n * o + c) * p;
            if (b) {
                const T bc = b[c];
                for (int64_t i = 0; i < p; ++i) dst[i] = src[i] + bc;
            } else {
                std::memcpy(dst, src, p * sizeof(T));
            }
        }
}

}  // namespace

template <class T>
void conv2d_forward(Backend& be, const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
    if constexpr (std::is_same_v<T, float>)
        if (wino_conv2d_forward(be, g, x, w, b, y) || dnnl_conv2d_forward(g, x, w, b, y)) return;
    const int64_t og = g.o / g.groups, cg = g.c / g.groups, kg = cg * g.kh * g.kw;
    const int64_t plane = g.ho * g.wo, in_img = g.c * g.h * g.w, out_img = g.o * plane;
    const int64_t chunk = chunk_images(g);
    Scratch<T, 0> cbuf(g.c * g.kh * g.kw * plane * chunk);
    Scratch<T, 1> ybuf(g.o * plane * chunk);
    T* cols = cbuf.data();
    for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
        const int64_t nb = std::min(chunk, g.n - n0), ld = nb * plane;
        im2col_images(g, x + n0 * in_img, nb, cols, ld);
        // y_g [O/g, nb HoWo] = W_g [O/g, kg] · cols_g [kg, nb HoWo], one batch entry per group.
        be.gemm({.m = og,
                 .n = ld,
                 .k = kg,
                 .batch = g.groups,
                 .a = w,
                 .lda = kg,
                 .stride_a = og * kg,
                 .b = cols,
                 .ldb = ld,
                 .stride_b = kg * ld,
                 .c = ybuf.data(),
                 .ldc = ld,
                 .stride_c = og * ld,
                 .dtype = dtype_v<T>()});
        rows_to_images(ybuf.data(), nb, g.o, plane, b, y + n0 * out_img);
    }
}

template <class T>
void conv2d_input_grad(Backend& be, const ConvGeom& g, const T* dy, const T* w, const T* b, T* dx) {
    if constexpr (std::is_same_v<T, float>)
        if (wino_conv2d_input_grad(be, g, dy, w, b, dx) || dnnl_conv2d_input_grad(g, dy, w, b, dx))
            return;
    const int64_t og = g.o / g.groups, cg = g.c / g.groups, kg = cg * g.kh * g.kw;
    const int64_t plane = g.ho * g.wo, in_img = g.c * g.h * g.w, out_img = g.o * plane;
    const int64_t chunk = chunk_images(g);
    Scratch<T, 0> cbuf(g.c * g.kh * g.kw * plane * chunk);
    Scratch<T, 1> ybuf(g.o * plane * chunk);
    T* cols = cbuf.data();
    for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
        const int64_t nb = std::min(chunk, g.n - n0), ld = nb * plane;
        images_to_rows(dy + n0 * out_img, nb, g.o, plane, ybuf.data());
        // cols_g [kg, nb HoWo] = W_gᵀ [kg, O/g] · dy_g [O/g, nb HoWo]
        be.gemm({.trans_a = true,
                 .m = kg,
                 .n = ld,
                 .k = og,
                 .batch = g.groups,
                 .a = w,
                 .lda = kg,
                 .stride_a = og * kg,
                 .b = ybuf.data(),
                 .ldb = ld,
                 .stride_b = og * ld,
                 .c = cols,
                 .ldc = ld,
                 .stride_c = kg * ld,
                 .dtype = dtype_v<T>()});
        const int64_t grain =
            std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, kg * plane));
        cpu::parallel_for(nb, grain, [&](int64_t lo, int64_t hi) {
            for (int64_t n = lo; n < hi; ++n) {
                T* dxn = dx + (n0 + n) * in_img;
                col2im(g, cols + n * plane, dxn, ld);
                if (b) {
                    const int64_t hw = g.h * g.w;
                    for (int64_t c = 0; c < g.c; ++c) {
                        T* p = dxn + c * hw;
                        const T bc = b[c];
                        for (int64_t i = 0; i < hw; ++i) p[i] += bc;
                    }
                }
            }
        });
    }
}

template <class T>
void conv2d_weight_grad(Backend& be, const ConvGeom& g, const T* x, const T* dy, T* dw) {
    if constexpr (std::is_same_v<T, float>)
        if (wino_conv2d_weight_grad(be, g, x, dy, dw) || dnnl_conv2d_weight_grad(g, x, dy, dw))
            return;
    const int64_t og = g.o / g.groups, cg = g.c / g.groups, kg = cg * g.kh * g.kw;
    const int64_t plane = g.ho * g.wo, in_img = g.c * g.h * g.w, out_img = g.o * plane;
    const int64_t chunk = chunk_images(g);
    Scratch<T, 0> cbuf(g.c * g.kh * g.kw * plane * chunk);
    Scratch<T, 1> ybuf(g.o * plane * chunk);
    T* cols = cbuf.data();
    for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
        const int64_t nb = std::min(chunk, g.n - n0), ld = nb * plane;
        im2col_images(g, x + n0 * in_img, nb, cols, ld);
        images_to_rows(dy + n0 * out_img, nb, g.o, plane, ybuf.data());
        // dW_g [O/g, kg] (+)= dy_g [O/g, nb HoWo] · cols_gᵀ [nb HoWo, kg]
        be.gemm({.trans_b = true,
                 .m = og,
                 .n = kg,
                 .k = ld,
                 .batch = g.groups,
                 .a = ybuf.data(),
                 .lda = ld,
                 .stride_a = og * ld,
                 .b = cols,
                 .ldb = ld,
                 .stride_b = kg * ld,
                 .c = dw,
                 .ldc = kg,
                 .stride_c = og * kg,
                 .beta = n0 == 0 ? 0.0 : 1.0,
                 .dtype = dtype_v<T>()});
    }
    if (g.n == 0) std::fill(dw, dw + g.o * kg, T(0));
}

// ---- pooling ---------------------------------------------------------------------------------

AxisWindows pool_windows(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p,
                         bool count_include_pad) {
    AxisWindows aw;
    aw.start.resize(out);
    aw.end.resize(out);
    aw.div.resize(out);
    for (int64_t i = 0; i < out; ++i) {
        int64_t st = i * s - p;
        int64_t en = std::min(st + k, in + p);
        const int64_t pool = en - st;
        st = std::max<int64_t>(st, 0);
        en = std::min(en, in);
        aw.start[i] = st;
        aw.end[i] = en;
        aw.div[i] = static_cast<double>(count_include_pad ? pool : en - st);
    }
    return aw;
}

AxisWindows adaptive_windows(int64_t in, int64_t out) {
    AxisWindows aw;
    aw.start.resize(out);
    aw.end.resize(out);
    aw.div.resize(out);
    for (int64_t i = 0; i < out; ++i) {
        aw.start[i] = (i * in) / out;
        aw.end[i] = ((i + 1) * in + out - 1) / out;
        aw.div[i] = static_cast<double>(aw.end[i] - aw.start[i]);
    }
    return aw;
}

template <class T>
void avg_pool_forward(int64_t planes, int64_t h, int64_t w, const AxisWindows& wh,
                      const AxisWindows& ww, const T* x, T* y) {
    const int64_t ho = static_cast<int64_t>(wh.start.size());
    const int64_t wo = static_cast<int64_t>(ww.start.size());
    for (int64_t p = 0; p < planes; ++p) {
        const T* xp = x + p * h * w;
        T* yp = y + p * ho * wo;
        for (int64_t i = 0; i < ho; ++i) {
            for (int64_t j = 0; j < wo; ++j) {
                T s = 0;
                for (int64_t a = wh.start[i]; a < wh.end[i]; ++a)
                    for (int64_t b = ww.start[j]; b < ww.end[j]; ++b) s += xp[a * w + b];
                yp[i * wo + j] = static_cast<T>(s / (wh.div[i] * ww.div[j]));
            }
        }
    }
}

template <class T>
void avg_pool_backward(int64_t planes, int64_t h, int64_t w, const AxisWindows& wh,
                       const AxisWindows& ww, const T* dy, T* dx) {
    const int64_t ho = static_cast<int64_t>(wh.start.size());
    const int64_t wo = static_cast<int64_t>(ww.start.size());
    std::fill(dx, dx + planes * h * w, T(0));
    for (int64_t p = 0; p < planes; ++p) {
        T* xp = dx + p * h * w;
        const T* yp = dy + p * ho * wo;
        for (int64_t i = 0; i < ho; ++i) {
            for (int64_t j = 0; j < wo; ++j) {
                const T v = static_cast<T>(yp[i * wo + j] / (wh.div[i] * ww.div[j]));
                for (int64_t a = wh.start[i]; a < wh.end[i]; ++a)
                    for (int64_t b = ww.start[j]; b < ww.end[j]; ++b) xp[a * w + b] += v;
            }
        }
    }
}

#define SOMA_CONV_INSTANTIATE(T)                                                                  \
    template void conv2d_forward<T>(Backend&, const ConvGeom&, const T*, const T*, const T*, T*); \
    template void conv2d_input_grad<T>(Backend&, const ConvGeom&, const T*, const T*, const T*,   \
                                       T*);                                                       \
    template void conv2d_weight_grad<T>(Backend&, const ConvGeom&, const T*, const T*, T*);       \
    template void avg_pool_forward<T>(int64_t, int64_t, int64_t, const AxisWindows&,              \
                                      const AxisWindows&, const T*, T*);                          \
    template void avg_pool_backward<T>(int64_t, int64_t, int64_t, const AxisWindows&,             \
                                       const AxisWindows&, const T*, T*);
SOMA_CONV_INSTANTIATE(float)
SOMA_CONV_INSTANTIATE(double)
#undef SOMA_CONV_INSTANTIATE

}  // namespace soma::conv
