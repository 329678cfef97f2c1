// Tensor's in-place ops, method forms and printing.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "autograd/node.h"
#include "backend/backend.h"
#include "core/tensor_impl.h"
#include "ops/op_util.h"
#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/random.h"

namespace soma {

// ---- in-place ops --------------------------------------------------------------------------
// Without autograd the kernel writes straight into this tensor's memory. With autograd (grad
// mode on and either side requiring grad) the result is computed out of place from a clone of
// the old value and then copied in, and this tensor takes the result's history (PyTorch's
// "rebase history"); saved copies of the old value detect the change via the version counter.

namespace {

Tensor& assign_inplace(Tensor& self, const Tensor& result, const char* op) {
    check_inplace(self, op);
    Tensor r = result;
    if (r.dtype() != self.dtype()) {
        SOMA_CHECK_DTYPE(!(is_floating(r.dtype()) && !is_floating(self.dtype())), op,
                         ": result type ", r.dtype(), " can't be cast to the desired output type ",
                         self.dtype());
        r = cast(r, self.dtype());
    }
    SOMA_CHECK_SHAPE(r.shape() == self.shape(), op, ": output with shape ", self.shape(),
                     " doesn't match the broadcast shape ", r.shape());
    backend(self).copy(r.detach(), self);
    bump_version(self);
    if (is_grad_enabled() && r.requires_grad()) {
        self.impl()->grad_fn = r.grad_fn();
        // The result's node was created for `r`; retarget retain_grad bookkeeping to self.
    }
    return self;
}

bool grad_path(const Tensor& a, const Tensor* b = nullptr) {
    return is_grad_enabled() && (a.requires_grad() || (b && b->defined() && b->requires_grad()));
}

// In-place on a view under autograd: the base's graph would not see the change, so its
// gradient would silently be wrong (PyTorch rebases the base through CopySlices; Soma refuses).
void check_view_inplace(const Tensor& self, const Tensor* other, const char* op) {
    SOMA_CHECK_T(!(self.impl()->is_view && grad_path(self, other)), AutogradError, op,
                 ": in-place modification of a view is not supported when it or the other operand "
                 "requires grad (the base tensor's gradient would be wrong). Use an out-of-place "
                 "op (cat, stack, where, ...) or clone() the view first.");
}

// Applies `fn(old, other)`: fast in-place kernel path when no gradient is involved.
template <class F>
Tensor& inplace_binary(Tensor& self, const Tensor& other, BinaryOp op, double alpha,
                       const char* name, F out_of_place) {
    check_inplace(self, name);
    check_view_inplace(self, &other, name);
    if (grad_path(self, &other))
        return assign_inplace(self, out_of_place(self.clone(), other), name);
    Shape bs = broadcast_shapes(self.shape(), other.shape(), name);
    SOMA_CHECK_SHAPE(bs == self.shape(), name, ": output with shape ", self.shape(),
                     " doesn't match the broadcast shape ", bs);
    DType rt = result_type(self, other);
    if (op == BinaryOp::div && !is_floating(rt)) rt = DType::float32;
    SOMA_CHECK_DTYPE(!(is_floating(rt) && !is_floating(self.dtype())), name, ": result type ", rt,
                     " can't be cast to the desired output type ", self.dtype());
    Tensor o = cast(other, self.dtype()).expand(self.shape());
    if (!self.is_contiguous() || self.shares_storage(other)) {
        // Aliasing or strided output: compute into a temporary first.
        Tensor tmp = make_tensor(self.shape(), self.dtype(), self.device());
        backend(self).binary(op, self, o, tmp, alpha);
        backend(self).copy(tmp, self);
    } else {
        backend(self).binary(op, self, o, self, alpha);
    }
    bump_version(self);
    return self;
}

}  // namespace

Tensor& Tensor::add_(const Tensor& other, Scalar alpha) {
    return inplace_binary(*this, other, BinaryOp::add, alpha.to_double(), "add_",
                          [alpha](const Tensor& a, const Tensor& b) { return add(a, b, alpha); });
}
Tensor& Tensor::sub_(const Tensor& other, Scalar alpha) {
    return inplace_binary(*this, other, BinaryOp::sub, alpha.to_double(), "sub_",
                          [alpha](const Tensor& a, const Tensor& b) { return sub(a, b, alpha); });
}
Tensor& Tensor::mul_(const Tensor& other) {
    return inplace_binary(*this, other, BinaryOp::mul, 1, "mul_",
                          [](const Tensor& a, const Tensor& b) { return mul(a, b); });
}
Tensor& Tensor::div_(const Tensor& other) {
    return inplace_binary(*this, other, BinaryOp::div, 1, "div_",
                          [](const Tensor& a, const Tensor& b) { return div(a, b); });
}
// The scalar keeps its own kind (int_tensor.add_(2.5) must fail the cast check, not add 2).
Tensor& Tensor::add_(Scalar other) {
    return add_(wrap_scalar(other, result_type(*this, other), device()));
}
Tensor& Tensor::sub_(Scalar other) {
    return sub_(wrap_scalar(other, result_type(*this, other), device()));
}
Tensor& Tensor::mul_(Scalar other) {
    return mul_(wrap_scalar(other, result_type(*this, other), device()));
}
Tensor& Tensor::div_(Scalar other) {
    return div_(wrap_scalar(other, is_floating(dtype()) ? dtype() : DType::float32, device()));
}

// fill_: y = v;  dself = 0 (a non-leaf keeps requiring grad, as in PyTorch)
Tensor& Tensor::fill_(Scalar value) {
    check_inplace(*this, "fill_");
    check_view_inplace(*this, nullptr, "fill_");
    if (grad_path(*this)) {
        Tensor out = full(shape(), value, {.dtype = dtype(), .device = device()});
        out = record("fill_", out, {*this},
                     [](const Tensor& g) { return std::vector<Tensor>{zeros_like(g)}; });
        return assign_inplace(*this, out, "fill_");
    }
    backend(*this).fill(*this, value);
    bump_version(*this);
    return *this;
}
Tensor& Tensor::zero_() { return fill_(0); }

Tensor& Tensor::copy_(const Tensor& src) {
    check_inplace(*this, "copy_");
    Shape bs = broadcast_shapes(shape(), src.shape(), "copy_");
    SOMA_CHECK_SHAPE(bs == shape(), "copy_: source of shape ", src.shape(),
                     " can't be broadcast to destination shape ", shape());
    check_view_inplace(*this, &src, "copy_");
    if (grad_path(*this, &src)) {
        // copy_: y = src (broadcast, converted);  dself = 0, dsrc = dy (summed back by expand)
        Tensor r = cast(src, dtype()).expand(shape());
        Tensor out = make_tensor(shape(), dtype(), device());
        backend(out).copy(r, out);
        out = record("copy_", out, {*this, r}, [](const Tensor& g) {
            return std::vector<Tensor>{zeros_like(g), g};
        });
        return assign_inplace(*this, out, "copy_");
    }
    Tensor s = src.expand(shape());
    if (s.shares_storage(*this)) s = s.clone();
    backend(*this).copy(s, *this);
    bump_version(*this);
    return *this;
}

Tensor& Tensor::clamp_(Scalar lo, Scalar hi) {
    check_inplace(*this, "clamp_");
    check_view_inplace(*this, nullptr, "clamp_");
    // Through assign_inplace also without autograd: it refuses float bounds on an int tensor.
    return assign_inplace(*this, clamp(grad_path(*this) ? clone() : *this, lo, hi), "clamp_");
}

Tensor& Tensor::masked_fill_(const Tensor& mask, Scalar value) {
    check_inplace(*this, "masked_fill_");
    check_view_inplace(*this, nullptr, "masked_fill_");
    return assign_inplace(*this, masked_fill(grad_path(*this) ? clone() : *this, mask, value),
                          "masked_fill_");
}

Tensor& Tensor::uniform_(double lo, double hi) {
    check_inplace(*this, "uniform_");
    SOMA_CHECK_DTYPE(is_floating(dtype()), "uniform_: dtype must be floating, got ", dtype());
    Tensor t = make_tensor(shape(), dtype(), device());
    auto& g = default_generator();
    backend(t).uniform(t, lo, hi, g.seed(), g.reserve((t.numel() + 1) / 2));
    backend(*this).copy(t, *this);
    bump_version(*this);
    return *this;
}
Tensor& Tensor::normal_(double mean, double std) {
    check_inplace(*this, "normal_");
    SOMA_CHECK_DTYPE(is_floating(dtype()), "normal_: dtype must be floating, got ", dtype());
    Tensor t = normal(mean, std, shape(), {.dtype = dtype(), .device = device()});
    backend(*this).copy(t, *this);
    bump_version(*this);
    return *this;
}

// ---- method forms --------------------------------------------------------------------------

Tensor Tensor::sum() const { return soma::sum(*this); }
Tensor Tensor::sum(const Shape& d, bool k) const { return soma::sum(*this, d, k); }
Tensor Tensor::mean() const { return soma::mean(*this); }
Tensor Tensor::mean(const Shape& d, bool k) const { return soma::mean(*this, d, k); }
Tensor Tensor::exp() const { return soma::exp(*this); }
Tensor Tensor::log() const { return soma::log(*this); }
Tensor Tensor::abs() const { return soma::abs(*this); }
Tensor Tensor::sqrt() const { return soma::sqrt(*this); }
Tensor Tensor::pow(Scalar e) const { return soma::pow(*this, e); }
Tensor Tensor::relu() const { return soma::relu(*this); }
Tensor Tensor::sigmoid() const { return soma::sigmoid(*this); }
Tensor Tensor::tanh() const { return soma::tanh(*this); }
Tensor Tensor::neg() const { return soma::neg(*this); }
Tensor Tensor::argmax(int64_t d, bool k) const { return soma::argmax(*this, d, k); }
Tensor Tensor::matmul(const Tensor& o) const { return soma::matmul(*this, o); }

// ---- printing (PyTorch's layout) -----------------------------------------------------------
// A transcription of torch/_tensor_str.py (1.13) with its default print options: one format for
// the whole tensor, chosen from the elements that will actually be printed; rows wrapped at 80
// columns; tensors over 1000 elements elided to 3 items at each end of every dim.

namespace {

constexpr int64_t kSummarizeThreshold = 1000;
constexpr int64_t kEdgeItems = 3;
constexpr size_t kLineWidth = 80;

bool elided(const Tensor& t, bool summarize) {
    return summarize && t.dim() > 0 && t.size(0) > 2 * kEdgeItems;
}

// Calls f(element) on every 0-dim element that will be printed, in order.
template <class F>
void for_printed(const Tensor& t, bool summarize, F&& f) {
    if (t.dim() == 0) {
        f(t);
        return;
    }
    int64_t n = t.size(0);
    for (int64_t i = 0; i < n; ++i) {
        if (elided(t, summarize) && i == kEdgeItems) i = n - kEdgeItems;
        for_printed(t.select(0, i), summarize, f);
    }
}

std::string fmt_double(double v, bool sci, int precision) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    std::ostringstream os;
    os << (sci ? std::scientific : std::fixed) << std::setprecision(precision) << v;
    return os.str();
}

// torch._tensor_str._Formatter.
struct Formatter {
    bool floating = false;
    bool int_mode = true;
    bool sci = false;
    size_t width = 1;

    Formatter(const Tensor& t, bool summarize) : floating(is_floating(t.dtype())) {
        if (!floating) {
            for_printed(t, summarize,
                        [&](const Tensor& e) { width = std::max(width, str(e).size()); });
            return;
        }
        std::vector<double> v;  // nonzero finite values
        for_printed(t, summarize, [&](const Tensor& e) {
            double x = e.item<double>();
            if (std::isfinite(x) && x != 0) v.push_back(x);
        });
        if (v.empty()) return;
        double amin = INFINITY, amax = 0;
        for (double x : v) {
            amin = std::min(amin, std::fabs(x));
            amax = std::max(amax, std::fabs(x));
            if (x != std::ceil(x)) int_mode = false;
        }
        sci = amax / amin > 1000.0 || amax > 1.0e8 || (!int_mode && amin < 1.0e-4);
        for (double x : v) {
            size_t w = sci        ? fmt_double(x, true, 4).size()
                       : int_mode ? fmt_double(x, false, 0).size() + 1
                                  : fmt_double(x, false, 4).size();
            width = std::max(width, w);
        }
    }

    // The element without padding.
    std::string str(const Tensor& e) const {
        switch (e.dtype()) {
            case DType::boolean: return e.item<bool>() ? "True" : "False";
            case DType::int64: return std::to_string(e.item<int64_t>());
            default: break;
        }
        double x = e.item<double>();
        if (sci) return fmt_double(x, true, 4);
        if (int_mode) return fmt_double(x, false, 0) + (std::isfinite(x) ? "." : "");
        return fmt_double(x, false, 4);
    }
    std::string format(const Tensor& e) const {
        std::string s = str(e);
        return std::string(width > s.size() ? width - s.size() : 0, ' ') + s;
    }
};

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
    return out;
}

// torch._tensor_str._tensor_str_with_formatter (and _vector_str for 1-D).
std::string tensor_str(const Tensor& t, size_t indent, bool summarize, const Formatter& f) {
    if (t.dim() == 0) return f.format(t);
    int64_t n = t.size(0);
    bool cut = elided(t, summarize);
    std::vector<std::string> items;
    for (int64_t i = 0; i < n; ++i) {
        if (cut && i == kEdgeItems) {
            items.push_back(t.dim() == 1 ? " ..." : "...");
            i = n - kEdgeItems;
        }
        items.push_back(t.dim() == 1 ? f.format(t.select(0, i))
                                     : tensor_str(t.select(0, i), indent + 1, summarize, f));
    }
    if (t.dim() > 1)
        return "[" +
               join(items, "," + std::string(static_cast<size_t>(t.dim() - 1), '\n') +
                               std::string(indent + 1, ' ')) +
               "]";
    size_t per_line = kLineWidth > indent ? (kLineWidth - indent) / (f.width + 2) : 0;
    per_line = std::max<size_t>(per_line, 1);
    std::vector<std::string> lines;
    for (size_t i = 0; i < items.size(); i += per_line) {
        std::vector<std::string> line;
        for (size_t j = i; j < std::min(items.size(), i + per_line); ++j) line.push_back(items[j]);
        lines.push_back(join(line, ", "));
    }
    return "[" + join(lines, ",\n" + std::string(indent + 1, ' ')) + "]";
}

}  // namespace

std::string Tensor::to_string() const {
    if (!defined()) return "tensor(undefined)";
    NoGradGuard ng;
    const std::string prefix = "tensor(";
    const size_t indent = prefix.size();
    Tensor c = detach();
    std::vector<std::string> suffixes;
    std::string body;
    const std::string dtype_suffix = std::string("dtype=torch.") + dtype_name(dtype());
    if (numel() == 0) {
        body = "[]";
        if (dim() != 1) {  // Python's tuple of the shape
            std::string s = "size=(";
            for (int64_t i = 0; i < dim(); ++i) s += (i ? ", " : "") + std::to_string(size(i));
            suffixes.push_back(s + ")");
        }
        if (dtype() != DType::float32) suffixes.push_back(dtype_suffix);
    } else {
        if (dtype() == DType::float64) suffixes.push_back(dtype_suffix);
        bool summarize = numel() > kSummarizeThreshold;
        body = tensor_str(c, indent, summarize, Formatter(c, summarize));
    }
    if (impl()->grad_fn)
        suffixes.push_back(std::string("grad_fn=<") + impl()->grad_fn->name + ">");
    else if (requires_grad())
        suffixes.push_back("requires_grad=True");
    // torch._tensor_str._add_suffixes: a suffix that would pass 80 columns starts a new line.
    std::string out = prefix + body;
    size_t nl = out.rfind('\n');
    size_t last_line = nl == std::string::npos ? out.size() + 2 : out.size() - nl + 1;
    for (const std::string& s : suffixes) {
        if (last_line + s.size() + 2 > kLineWidth) {
            out += ",\n" + std::string(indent, ' ') + s;
            last_line = indent + s.size();
        } else {
            out += ", " + s;
            last_line += s.size() + 2;
        }
    }
    return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace soma
