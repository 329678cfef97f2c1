// Image transforms written as direct memory loops over contiguous [images, C, H, W] blocks:
// one pass, no intermediate padded tensor, any dtype for crop and flip (rows move as bytes).
#include "soma/data/transforms.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/tensor_impl.h"

namespace soma::data {

namespace {

// x seen as `images` images of `channels` x h x w (a 4-D x is a batch, 2-D or 3-D one image).
struct ImageGeometry {
    int64_t images = 1, channels = 1, h = 0, w = 0;
};

ImageGeometry geometry(const Tensor& x, const char* op) {
    SOMA_CHECK_VALUE(x.defined(), op, ": input is undefined");
    SOMA_CHECK_T(x.device() == Device::cpu(), DeviceError, op,
                 ": data transforms run on the cpu: got ", x.device().str());
    SOMA_CHECK_SHAPE(x.dim() >= 2 && x.dim() <= 4, op, ": expected an image [H, W] or [C, H, W] ",
                     "or a batch [N, C, H, W]: got shape ", x.shape());
    ImageGeometry g;
    const Shape& s = x.shape();
    const int64_t d = x.dim();
    g.h = s[d - 2];
    g.w = s[d - 1];
    if (d >= 3) g.channels = s[d - 3];
    if (d == 4) g.images = s[0];
    return g;
}

// Runs `fn` on a transform's input under a lock (the Generator is shared by copies of the
// std::function and may be used from a DataLoader's worker thread).
struct SharedGen {
    std::mutex mutex;
    Generator gen;
    explicit SharedGen(uint64_t seed) : gen(seed) {}
};

template <class T>
void normalize_loop(const T* in, T* out, int64_t outer, int64_t channels, int64_t inner,
                    const std::vector<double>& mean, const std::vector<double>& std) {
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < channels; ++c) {
            const T m = static_cast<T>(mean.size() == 1 ? mean[0] : mean[c]);
            const T inv = static_cast<T>(1.0 / (std.size() == 1 ? std[0] : std[c]));
            const int64_t base = (o * channels + c) * inner;
            for (int64_t i = 0; i < inner; ++i) out[base + i] = (in[base + i] - m) * inv;
        }
}

// Each of `rows` rows of `w` elements, mirrored; elements move as same-size unsigned words.
template <class W>
void reverse_rows(const char* src, char* dst, int64_t rows, int64_t w) {
    static_assert(sizeof(W) == 1 || sizeof(W) == 4 || sizeof(W) == 8);
    const auto* s = reinterpret_cast<const W*>(src);
    auto* d = reinterpret_cast<W*>(dst);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < w; ++c) d[r * w + c] = s[r * w + w - 1 - c];
}

}  // namespace

Tensor normalize(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& std) {
    ImageGeometry g = geometry(x, "normalize");
    const auto c = static_cast<size_t>(g.channels);
    SOMA_CHECK_VALUE(mean.size() == c || mean.size() == 1, "normalize: mean has ", mean.size(),
                     " values, expected 1 or ", c, " (channels of shape ", x.shape(), ")");
    SOMA_CHECK_VALUE(std.size() == c || std.size() == 1, "normalize: std has ", std.size(),
                     " values, expected 1 or ", c, " (channels of shape ", x.shape(), ")");
    for (double s : std) SOMA_CHECK_VALUE(s != 0, "normalize: std must be non-zero: got ", s);
    const DType dt = x.is_floating_point() ? x.dtype() : DType::float32;
    Tensor in = x.detach().to(dt).contiguous();
    Tensor out = make_tensor(x.shape(), dt);
    if (dt == DType::float32)
        normalize_loop(in.data_ptr<float>(), out.data_ptr<float>(), g.images, g.channels, g.h * g.w,
                       mean, std);
    else
        normalize_loop(in.data_ptr<double>(), out.data_ptr<double>(), g.images, g.channels,
                       g.h * g.w, mean, std);
    return out;
}

Tensor random_crop(const Tensor& x, int64_t size_h, int64_t size_w, int64_t padding,
                   Generator& gen) {
    ImageGeometry g = geometry(x, "random_crop");
    SOMA_CHECK_VALUE(size_h > 0 && size_w > 0 && padding >= 0, "random_crop: size must be ",
                     "positive and padding non-negative: got size ", size_h, "x", size_w,
                     ", padding ", padding);
    const int64_t hp = g.h + 2 * padding, wp = g.w + 2 * padding;
    SOMA_CHECK_VALUE(size_h <= hp && size_w <= wp, "random_crop: crop ", size_h, "x", size_w,
                     " is larger than the padded image ", hp, "x", wp, " (shape ", x.shape(),
                     ", padding ", padding, ")");
    Shape shape = x.shape();
    shape[shape.size() - 2] = size_h;
    shape[shape.size() - 1] = size_w;
    Tensor in = x.detach().contiguous();
    Tensor out = make_tensor(shape, x.dtype());
    const size_t es = dtype_size(x.dtype());
    const auto* src = static_cast<const char*>(in.raw_data());
    auto* dst = static_cast<char*>(out.raw_data());
    std::memset(dst, 0, static_cast<size_t>(out.numel()) * es);
    for (int64_t n = 0; n < g.images; ++n) {
        // Top-left corner of the window in padded coordinates (torchvision: randint(0, H-h+1)).
        const auto top =
            static_cast<int64_t>(gen.next_below(static_cast<uint64_t>(hp - size_h + 1)));
        const auto left =
            static_cast<int64_t>(gen.next_below(static_cast<uint64_t>(wp - size_w + 1)));
        // Output column x reads source column x + left - padding; keep those inside [0, W).
        const int64_t x0 = std::max<int64_t>(0, padding - left);
        const int64_t x1 = std::min<int64_t>(size_w, g.w + padding - left);
        for (int64_t c = 0; c < g.channels; ++c) {
            const int64_t plane = n * g.channels + c;
            for (int64_t y = 0; y < size_h; ++y) {
                const int64_t sy = y + top - padding;
                if (sy < 0 || sy >= g.h || x1 <= x0) continue;
                const char* s = src + ((plane * g.h + sy) * g.w + x0 + left - padding) * es;
                char* d = dst + ((plane * size_h + y) * size_w + x0) * es;
                std::memcpy(d, s, static_cast<size_t>(x1 - x0) * es);
            }
        }
    }
    return out;
}

Tensor random_horizontal_flip(const Tensor& x, double p, Generator& gen) {
    ImageGeometry g = geometry(x, "random_horizontal_flip");
    SOMA_CHECK_VALUE(p >= 0 && p <= 1, "random_horizontal_flip: p must be in [0, 1]: got ", p);
    Tensor in = x.detach().contiguous();
    Tensor out = make_tensor(x.shape(), x.dtype());
    const size_t es = dtype_size(x.dtype());
    const auto* src = static_cast<const char*>(in.raw_data());
    auto* dst = static_cast<char*>(out.raw_data());
    const int64_t image_elems = g.channels * g.h * g.w;
    for (int64_t n = 0; n < g.images; ++n) {
        const bool flip = gen.next_double() < p;  // torchvision: torch.rand(1) < p
        const char* s = src + n * image_elems * es;
        char* d = dst + n * image_elems * es;
        if (!flip) {
            std::memcpy(d, s, static_cast<size_t>(image_elems) * es);
            continue;
        }
        switch (es) {
            case 1: reverse_rows<uint8_t>(s, d, g.channels * g.h, g.w); break;
            case 4: reverse_rows<uint32_t>(s, d, g.channels * g.h, g.w); break;
            default: reverse_rows<uint64_t>(s, d, g.channels * g.h, g.w); break;
        }
    }
    return out;
}

// ---- Transform factories ---------------------------------------------------------------------

Transform normalize(std::vector<double> mean, std::vector<double> std) {
    return [mean = std::move(mean), std = std::move(std)](Example e) {
        e.input = normalize(e.input, mean, std);
        return e;
    };
}

Transform random_crop(int64_t size, int64_t padding, uint64_t seed) {
    auto state = std::make_shared<SharedGen>(seed);
    return [state, size, padding](Example e) {
        std::lock_guard lock(state->mutex);
        e.input = random_crop(e.input, size, size, padding, state->gen);
        return e;
    };
}

Transform random_horizontal_flip(double p, uint64_t seed) {
    auto state = std::make_shared<SharedGen>(seed);
    return [state, p](Example e) {
        std::lock_guard lock(state->mutex);
        e.input = random_horizontal_flip(e.input, p, state->gen);
        return e;
    };
}

Transform compose(std::vector<Transform> transforms) {
    return [transforms = std::move(transforms)](Example e) {
        for (const auto& t : transforms)
            if (t) e = t(std::move(e));
        return e;
    };
}

}  // namespace soma::data
