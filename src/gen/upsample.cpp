// interpolate (nearest, bilinear) and its adjoint. Both modes are separable linear maps: each
// output row oh reads input rows i0[oh], i1[oh] with weights w0[oh], w1[oh] (nearest: w1 = 0),
// likewise columns. Forward: y[oh, ow] = sum_ab wh_a[oh] ww_b[ow] x[ih_a, iw_b]; backward is the
// transpose (scatter-add into x's shape), recorded as an op whose own backward is the forward.
#include "soma/gen/upsample.h"

#include <cmath>
#include <sstream>

#include "autograd/node.h"
#include "soma/ops.h"

namespace soma::nn {

namespace functional {
namespace {

struct AxisMap {
    std::vector<int64_t> i0, i1;
    std::vector<double> w0, w1;
};

// PyTorch's area_pixel_compute_scale: in / out for a given size, 1 / scale_factor otherwise;
// align_corners uses (in - 1) / (out - 1).
AxisMap axis_map(int64_t in, int64_t out, std::optional<double> sf, UpsampleMode mode,
                 bool align_corners) {
    AxisMap m;
    m.i0.resize(static_cast<size_t>(out));
    m.i1.resize(static_cast<size_t>(out));
    m.w0.resize(static_cast<size_t>(out));
    m.w1.resize(static_cast<size_t>(out));
    for (int64_t o = 0; o < out; ++o) {
        auto k = static_cast<size_t>(o);
        if (mode == UpsampleMode::nearest) {
            double scale = sf ? 1.0 / *sf : static_cast<double>(in) / static_cast<double>(out);
            auto s = static_cast<int64_t>(std::floor(static_cast<double>(o) * scale));
            s = std::min(s, in - 1);
            m.i0[k] = m.i1[k] = s;
            m.w0[k] = 1.0;
            m.w1[k] = 0.0;
            continue;
        }
        double src;
        if (align_corners) {
            double scale = out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0;
            src = static_cast<double>(o) * scale;
        } else {
            double scale = sf ? 1.0 / *sf : static_cast<double>(in) / static_cast<double>(out);
            src = std::max((static_cast<double>(o) + 0.5) * scale - 0.5, 0.0);
        }
        auto i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
        int64_t i1 = std::min(i0 + 1, in - 1);
        double l = src - static_cast<double>(i0);
        m.i0[k] = i0;
        m.i1[k] = i1;
        m.w0[k] = 1.0 - l;
        m.w1[k] = l;
    }
    return m;
}

struct Plan {
    int64_t planes = 0, h = 0, w = 0, oh = 0, ow = 0;
    AxisMap mh, mw;
};

// x [P, h, w] -> y [P, oh, ow]
template <class T>
void resample(const T* x, T* y, const Plan& p) {
    for (int64_t c = 0; c < p.planes; ++c) {
        const T* xp = x + c * p.h * p.w;
        T* yp = y + c * p.oh * p.ow;
        for (int64_t r = 0; r < p.oh; ++r) {
            auto kr = static_cast<size_t>(r);
            const T* r0 = xp + p.mh.i0[kr] * p.w;
            const T* r1 = xp + p.mh.i1[kr] * p.w;
            auto a0 = static_cast<T>(p.mh.w0[kr]), a1 = static_cast<T>(p.mh.w1[kr]);
            for (int64_t q = 0; q < p.ow; ++q) {
                auto kq = static_cast<size_t>(q);
                int64_t c0 = p.mw.i0[kq], c1 = p.mw.i1[kq];
                auto b0 = static_cast<T>(p.mw.w0[kq]), b1 = static_cast<T>(p.mw.w1[kq]);
                yp[r * p.ow + q] =
                    a0 * (b0 * r0[c0] + b1 * r0[c1]) + a1 * (b0 * r1[c0] + b1 * r1[c1]);
            }
        }
    }
}

// g [P, oh, ow] -> gx [P, h, w] (gx zeroed by the caller): the transpose of resample.
template <class T>
void resample_adjoint(const T* g, T* gx, const Plan& p) {
    for (int64_t c = 0; c < p.planes; ++c) {
        T* xp = gx + c * p.h * p.w;
        const T* gp = g + c * p.oh * p.ow;
        for (int64_t r = 0; r < p.oh; ++r) {
            auto kr = static_cast<size_t>(r);
            T* r0 = xp + p.mh.i0[kr] * p.w;
            T* r1 = xp + p.mh.i1[kr] * p.w;
            auto a0 = static_cast<T>(p.mh.w0[kr]), a1 = static_cast<T>(p.mh.w1[kr]);
            for (int64_t q = 0; q < p.ow; ++q) {
                auto kq = static_cast<size_t>(q);
                int64_t c0 = p.mw.i0[kq], c1 = p.mw.i1[kq];
                auto b0 = static_cast<T>(p.mw.w0[kq]), b1 = static_cast<T>(p.mw.w1[kq]);
                T v = gp[r * p.ow + q];
                r0[c0] += a0 * b0 * v;
                r0[c1] += a0 * b1 * v;
                r1[c0] += a1 * b0 * v;
                r1[c1] += a1 * b1 * v;
            }
        }
    }
}

Tensor apply(const Tensor& x, const std::shared_ptr<const Plan>& p, bool adjoint);

// resample: y = R x;  dx = R^T dy.   adjoint: y = R^T x;  dx = R dy.
Tensor apply(const Tensor& x0, const std::shared_ptr<const Plan>& p, bool adjoint) {
    Tensor x = x0.contiguous();
    Shape out_shape = x.shape();
    out_shape[out_shape.size() - 2] = adjoint ? p->h : p->oh;
    out_shape[out_shape.size() - 1] = adjoint ? p->w : p->ow;
    Tensor y = zeros(out_shape, {.dtype = x.dtype()});
    if (x.dtype() == DType::float32) {
        if (adjoint)
            resample_adjoint(x.data_ptr<float>(), y.data_ptr<float>(), *p);
        else
            resample(x.data_ptr<float>(), y.data_ptr<float>(), *p);
    } else {
        if (adjoint)
            resample_adjoint(x.data_ptr<double>(), y.data_ptr<double>(), *p);
        else
            resample(x.data_ptr<double>(), y.data_ptr<double>(), *p);
    }
    return record(
        adjoint ? "interpolate_backward" : "interpolate", y, {x0},
        [p, adjoint](const Tensor& g) { return std::vector<Tensor>{apply(g, p, !adjoint)}; });
}

}  // namespace

Tensor interpolate(const Tensor& x, const InterpolateArgs& a) {
    SOMA_CHECK_VALUE(x.defined(), "interpolate: input is undefined");
    SOMA_CHECK_SHAPE(x.dim() == 4 || x.dim() == 3, "interpolate: input must be [N, C, H, W] or ",
                     "[C, H, W]: got shape ", x.shape(), ".");
    SOMA_CHECK_DTYPE(x.dtype() == DType::float32 || x.dtype() == DType::float64,
                     "interpolate: input must be float32 or float64: got ", dtype_name(x.dtype()),
                     ". Convert with .to(soma::DType::float32).");
    SOMA_CHECK_VALUE(a.size.has_value() != a.scale_factor.has_value(),
                     "interpolate: give exactly one of size and scale_factor");
    auto p = std::make_shared<Plan>();
    p->h = x.size(-2);
    p->w = x.size(-1);
    p->planes = x.numel() / std::max<int64_t>(p->h * p->w, 1);
    if (a.size) {
        p->oh = (*a.size)[0];
        p->ow = (*a.size)[1];
    } else {
        auto [sh, sw] = *a.scale_factor;
        SOMA_CHECK_VALUE(sh > 0 && sw > 0, "interpolate: scale_factor must be positive: got (", sh,
                         ", ", sw, ")");
        p->oh = static_cast<int64_t>(std::floor(static_cast<double>(p->h) * sh));
        p->ow = static_cast<int64_t>(std::floor(static_cast<double>(p->w) * sw));
    }
    SOMA_CHECK_VALUE(p->oh > 0 && p->ow > 0 && p->h > 0 && p->w > 0,
                     "interpolate: input and output sizes must be positive: got input ", x.shape(),
                     ", output (", p->oh, ", ", p->ow, ")");
    std::optional<double> sfh, sfw;
    if (a.scale_factor) {
        sfh = (*a.scale_factor)[0];
        sfw = (*a.scale_factor)[1];
    }
    p->mh = axis_map(p->h, p->oh, sfh, a.mode, a.align_corners);
    p->mw = axis_map(p->w, p->ow, sfw, a.mode, a.align_corners);
    return apply(x, p, false);
}

}  // namespace functional

std::string Upsample::extra_repr() const {
    std::ostringstream os;
    if (options.size)
        os << "size=(" << (*options.size)[0] << ", " << (*options.size)[1] << ")";
    else if (options.scale_factor)
        os << "scale_factor=(" << (*options.scale_factor)[0] << ", " << (*options.scale_factor)[1]
           << ")";
    os << ", mode='" << (options.mode == functional::UpsampleMode::nearest ? "nearest" : "bilinear")
       << "'";
    if (options.mode == functional::UpsampleMode::bilinear && options.align_corners)
        os << ", align_corners=True";
    return os.str();
}

}  // namespace soma::nn
