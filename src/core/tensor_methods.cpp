// Tensor's in-place ops, method forms and printing.
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

// Applies `fn(old, other)`: fast in-place kernel path when no gradient is involved.
template <class F>
Tensor& inplace_binary(Tensor& self, const Tensor& other, BinaryOp op, double alpha,
                       const char* name, F out_of_place) {
    check_inplace(self, name);
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
Tensor& Tensor::add_(Scalar other) { return add_(wrap_scalar(other, dtype(), device())); }
Tensor& Tensor::sub_(Scalar other) { return sub_(wrap_scalar(other, dtype(), device())); }
Tensor& Tensor::mul_(Scalar other) { return mul_(wrap_scalar(other, dtype(), device())); }
Tensor& Tensor::div_(Scalar other) {
    return div_(wrap_scalar(other, is_floating(dtype()) ? dtype() : DType::float32, device()));
}

Tensor& Tensor::fill_(Scalar value) {
    check_inplace(*this, "fill_");
    backend(*this).fill(*this, value);
    bump_version(*this);
    if (is_grad_enabled() && impl()->grad_fn) impl()->grad_fn = nullptr;  // constant now
    return *this;
}
Tensor& Tensor::zero_() { return fill_(0); }

Tensor& Tensor::copy_(const Tensor& src) {
    check_inplace(*this, "copy_");
    Shape bs = broadcast_shapes(shape(), src.shape(), "copy_");
    SOMA_CHECK_SHAPE(bs == shape(), "copy_: source of shape ", src.shape(),
                     " can't be broadcast to destination shape ", shape());
    if (grad_path(src)) {
        Tensor r = cast(src, dtype()).expand(shape());
        return assign_inplace(*this, r.clone(), "copy_");
    }
    Tensor s = src.expand(shape());
    if (s.shares_storage(*this)) s = s.clone();
    backend(*this).copy(s, *this);
    bump_version(*this);
    return *this;
}

Tensor& Tensor::clamp_(Scalar lo, Scalar hi) {
    check_inplace(*this, "clamp_");
    if (grad_path(*this)) return assign_inplace(*this, clamp(clone(), lo, hi), "clamp_");
    Tensor tmp = clamp(*this, lo, hi);
    backend(*this).copy(tmp, *this);
    bump_version(*this);
    return *this;
}

Tensor& Tensor::masked_fill_(const Tensor& mask, Scalar value) {
    check_inplace(*this, "masked_fill_");
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

namespace {

struct Fmt {
    bool integral = false;  // int or bool dtype
    bool is_bool = false;
    bool int_mode = false;  // floats that are all whole numbers: "1."
    bool sci = false;
    int width = 1;
    std::string format(double v) const {
        std::ostringstream os;
        if (is_bool) return v != 0 ? "True" : "False";
        if (integral) {
            os << static_cast<int64_t>(v);
        } else if (std::isnan(v)) {
            os << "nan";
        } else if (std::isinf(v)) {
            os << (v > 0 ? "inf" : "-inf");
        } else if (sci) {
            os << std::scientific << std::setprecision(4) << v;
        } else if (int_mode) {
            os << std::fixed << std::setprecision(0) << v << ".";
        } else {
            os << std::fixed << std::setprecision(4) << v;
        }
        return os.str();
    }
};

constexpr int64_t kSummarizeThreshold = 1000;
constexpr int64_t kEdgeItems = 3;

void print_rec(std::ostringstream& os, const Tensor& t, const Fmt& f, bool summarize, int indent) {
    if (t.dim() == 0) {
        std::string s = f.format(t.item<double>());
        os << std::string(f.width - static_cast<int>(s.size()), ' ') << s;
        return;
    }
    int64_t n = t.size(0);
    os << "[";
    auto item = [&](int64_t i, bool last) {
        print_rec(os, t.select(0, i), f, summarize, indent + 1);
        if (!last) {
            os << ",";
            if (t.dim() > 1)
                os << std::string(static_cast<size_t>(t.dim() - 1), '\n')
                   << std::string(static_cast<size_t>(indent + 1), ' ');
            else
                os << " ";
        }
    };
    if (summarize && n > 2 * kEdgeItems) {
        for (int64_t i = 0; i < kEdgeItems; ++i) item(i, false);
        os << "...";
        if (t.dim() > 1)
            os << ",\n" << std::string(static_cast<size_t>(indent + 1), ' ');
        else
            os << ", ";
        for (int64_t i = n - kEdgeItems; i < n; ++i) item(i, i == n - 1);
    } else {
        for (int64_t i = 0; i < n; ++i) item(i, i == n - 1);
    }
    os << "]";
}

}  // namespace

std::string Tensor::to_string() const {
    if (!defined()) return "tensor(undefined)";
    NoGradGuard ng;
    Tensor c = detach();
    Fmt f;
    f.is_bool = dtype() == DType::boolean;
    f.integral = !is_floating(dtype());
    bool summarize = numel() > kSummarizeThreshold;
    if (!f.integral && numel() > 0) {
        std::vector<double> v = c.to_vector<double>();
        double amax = 0, amin = INFINITY;
        bool all_int = true;
        for (double x : v) {
            if (!std::isfinite(x)) continue;
            amax = std::max(amax, std::fabs(x));
            if (x != 0) amin = std::min(amin, std::fabs(x));
            if (x != std::floor(x)) all_int = false;
        }
        f.int_mode = all_int;
        f.sci = all_int ? amax > 1e8
                        : (amax > 1e8 || (amin < 1e-4 && amin > 0) ||
                           (amin != INFINITY && amax / amin > 1000.0));
    }
    if (numel() > 0) {
        // Width of the widest element, so columns line up.
        std::vector<double> v = c.to_vector<double>();
        for (double x : v) f.width = std::max(f.width, static_cast<int>(f.format(x).size()));
    }
    std::ostringstream os;
    os << "tensor(";
    if (numel() == 0 && dim() <= 1) {
        os << "[]";
    } else {
        print_rec(os, c, f, summarize, 7);
    }
    bool default_dtype =
        dtype() == DType::float32 || dtype() == DType::int64 || dtype() == DType::boolean;
    if (numel() == 0 && dim() > 1) os << "[], size=" << shape_str(shape());
    if (!default_dtype) os << ", dtype=" << dtype_name(dtype());
    if (impl()->grad_fn)
        os << ", grad_fn=<" << impl()->grad_fn->name << ">";
    else if (requires_grad())
        os << ", requires_grad=True";
    os << ")";
    return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace soma
