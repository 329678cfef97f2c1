// Op table tests: every case of tests/fixtures/ops.json (golden values from PyTorch, written by
// scripts/gen_fixtures.py) run through the row of tests/op_table.h for its op.
//
//   OpTable/Fixture.Forward/<case>        outputs: dtype and shape exact, values within tolerance
//   OpTable/Grads.Case/<case>             d(sum <out, grad_out>)/d(inputs) against torch.autograd
//   OpTable/Gradcheck.Case/<case>         float64 central differences (soma::gradcheck)
//   OpTable/GradGradcheck.Case/<case>     double backward (elementwise, linalg, reductions)
//   OpTable/NonContiguous.Case/<case>     the same case with strided (non-contiguous) inputs
//   OpTable/ZeroSize.Case/<case>          zero-size inputs run and give PyTorch's shapes
//   OpTable/Errors.Raises/<case>          bad inputs raise the right soma::Error with op + shapes
//   OpTableCoverage.EveryOpHasARowAndACase  parses include/soma/ops.h
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "op_table.h"

namespace soma::testing {
namespace {

using ::testing::HasSubstr;

#ifndef SOMA_FIXTURE_DIR
#error "SOMA_FIXTURE_DIR must name tests/fixtures"
#endif

// ---- fixture loading ----------------------------------------------------------------------------

struct Case {
    std::string name;  // "add/broadcast"
    std::string op;
    Json attrs;
    Json inputs, outputs, grad_outputs, grads;
    bool gradcheck = false, gradgrad = false;
};

const std::vector<Case>& all_cases() {
    static const std::vector<Case> cases = [] {
        std::ifstream f(std::string(SOMA_FIXTURE_DIR) + "/ops.json");
        if (!f) throw std::runtime_error("cannot open " SOMA_FIXTURE_DIR "/ops.json");
        Json j = Json::parse(f);
        std::vector<Case> out;
        for (const Json& c : j.at("cases")) {
            out.push_back({c.at("name"), c.at("op"), c.at("attrs"), c.at("inputs"), c.at("outputs"),
                           c.at("grad_outputs"), c.at("grads"), c.at("gradcheck"),
                           c.at("gradgrad")});
        }
        return out;
    }();
    return cases;
}

double json_number(const Json& v) {
    if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (s == "nan") return NAN;
        if (s == "inf") return INFINITY;
        if (s == "-inf") return -INFINITY;
        throw std::runtime_error("fixture: bad number " + s);
    }
    if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
    return v.get<double>();
}

// gtest prints parameters: show the case name, not the bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

Shape json_shape(const Json& t) { return t.at("shape").get<Shape>(); }

int64_t numel_of(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}

// A fixture tensor as a fresh soma leaf (requires_grad as recorded when `use_grad`).
Tensor from_json(const Json& t, bool use_grad = true) {
    const DType dt = dtype_from_name(t.at("dtype").get<std::string>());
    const Shape shape = json_shape(t);
    const Json& data = t.at("data");
    Tensor out;
    switch (dt) {
        case DType::float64:
        case DType::float32: {
            std::vector<double> v;
            for (const Json& e : data) v.push_back(json_number(e));
            out = from_vector<double>(v, shape);
            if (dt == DType::float32) out = out.to(DType::float32);
            break;
        }
        case DType::int64: {
            std::vector<int64_t> v;
            for (const Json& e : data) v.push_back(e.get<int64_t>());
            out = from_vector<int64_t>(v, shape);
            break;
        }
        case DType::boolean: {
            std::vector<bool> v;
            for (const Json& e : data) v.push_back(e.get<bool>());
            out = from_vector<bool>(v, shape);
            break;
        }
    }
    if (use_grad && t.value("requires_grad", false)) out.requires_grad_(true);
    return out;
}

Tensors make_inputs(const Case& c) {
    Tensors in;
    for (const Json& t : c.inputs) in.push_back(from_json(t));
    return in;
}

Tensors run_case(const Case& c, const Tensors& inputs) {
    return op_table().at(c.op)(inputs, c.attrs);
}

// ---- comparison ---------------------------------------------------------------------------------

::testing::AssertionResult matches(const Tensor& actual, const Json& expected,
                                   const std::string& what) {
    if (!actual.defined()) return ::testing::AssertionFailure() << what << ": undefined tensor";
    const std::string want_dtype = expected.at("dtype").get<std::string>();
    const std::string got_dtype =
        actual.dtype() == DType::boolean ? "bool" : dtype_name(actual.dtype());
    if (got_dtype != want_dtype)
        return ::testing::AssertionFailure()
               << what << ": dtype " << got_dtype << ", expected " << want_dtype;
    const Shape want_shape = json_shape(expected);
    if (actual.shape() != want_shape)
        return ::testing::AssertionFailure() << what << ": shape " << shape_str(actual.shape())
                                             << ", expected " << shape_str(want_shape);
    const Json& data = expected.at("data");
    NoGradGuard ng;
    if (actual.dtype() == DType::int64 || actual.dtype() == DType::boolean) {
        std::vector<int64_t> got = actual.to_vector<int64_t>();
        for (size_t i = 0; i < got.size(); ++i) {
            int64_t want =
                data[i].is_boolean() ? (data[i].get<bool>() ? 1 : 0) : data[i].get<int64_t>();
            if (got[i] != want)
                return ::testing::AssertionFailure()
                       << what << ": element " << i << " is " << got[i] << ", expected " << want;
        }
        return ::testing::AssertionSuccess();
    }
    const bool f64 = actual.dtype() == DType::float64;
    const double rtol = f64 ? 1e-6 : 1e-4, atol = f64 ? 1e-8 : 1e-5;
    std::vector<double> got = actual.to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) {
        const double want = json_number(data[i]);
        const double g = got[i];
        bool ok;
        if (std::isnan(want))
            ok = std::isnan(g);
        else if (std::isinf(want))
            ok = g == want;
        else
            ok = std::fabs(g - want) <= atol + rtol * std::fabs(want);
        if (!ok)
            return ::testing::AssertionFailure()
                   << what << ": element " << i << " is " << std::setprecision(12) << g
                   << ", expected " << want << " (rtol " << rtol << ", atol " << atol << ")";
    }
    return ::testing::AssertionSuccess();
}

bool all_zero(const Tensor& t) {
    NoGradGuard ng;
    for (double v : t.to_vector<double>())
        if (v != 0) return false;
    return true;
}

void expect_outputs(const Case& c, const Tensors& outs, const std::string& ctx = "") {
    ASSERT_EQ(outs.size(), c.outputs.size()) << ctx << "number of outputs";
    for (size_t i = 0; i < outs.size(); ++i)
        EXPECT_TRUE(matches(outs[i], c.outputs[i], ctx + "output " + std::to_string(i)));
}

bool has_grads(const Case& c) {
    for (const Json& g : c.grads)
        if (!g.is_null()) return true;
    return false;
}

// Computes d(sum <out_i, grad_out_i>)/d(inputs) and compares it with the fixture.
void expect_grads(const Case& c, const Tensors& inputs, const Tensors& outs,
                  const std::string& ctx = "") {
    Tensors live, gouts, diff;
    std::vector<size_t> diff_idx;
    for (size_t i = 0; i < outs.size() && i < c.grad_outputs.size(); ++i)
        if (!c.grad_outputs[i].is_null()) {
            live.push_back(outs[i]);
            gouts.push_back(from_json(c.grad_outputs[i], false));
        }
    for (size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i].requires_grad()) {
            diff.push_back(inputs[i]);
            diff_idx.push_back(i);
        }
    ASSERT_FALSE(live.empty() || diff.empty()) << ctx << "case has no gradient to check";
    Tensors gs = autograd::grad(live, diff, gouts, false, std::nullopt, /*allow_unused=*/true);
    for (size_t k = 0; k < diff.size(); ++k) {
        const Json& want = c.grads[diff_idx[k]];
        const std::string what = ctx + "grad of input " + std::to_string(diff_idx[k]);
        if (want.is_null()) {
            EXPECT_TRUE(!gs[k].defined() || all_zero(gs[k])) << what << ": expected no gradient";
        } else if (!gs[k].defined()) {
            Tensor z = zeros_like(diff[k]);
            EXPECT_TRUE(matches(z, want, what + " (undefined, taken as zeros)"));
        } else {
            EXPECT_TRUE(matches(gs[k], want, what));
        }
    }
}

// ---- case selection -------------------------------------------------------------------------

template <class Pred>
std::vector<Case> select_cases(Pred p) {
    std::vector<Case> out;
    for (const Case& c : all_cases())
        if (p(c)) out.push_back(c);
    return out;
}

std::string param_name(const ::testing::TestParamInfo<Case>& info) {
    std::string s;
    for (char ch : info.param.name) s += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
    return s;
}

bool any_zero_size(const Case& c) {
    for (const Json& t : c.inputs)
        if (numel_of(json_shape(t)) == 0) return true;
    for (const Json& t : c.outputs)
        if (numel_of(json_shape(t)) == 0) return true;
    return false;
}

// Differentiable in float64: every input that requires grad is float64 and non-empty.
bool float64_differentiable(const Case& c) {
    if (!c.gradcheck || any_zero_size(c)) return false;
    for (const Json& t : c.inputs)
        if (t.value("requires_grad", false) && t.at("dtype") != "float64") return false;
    return true;
}

bool has_strided_input(const Case& c) {
    if (c.op == "view") return false;  // view() of a strided tensor may legitimately refuse
    for (const Json& t : c.inputs) {
        Shape s = json_shape(t);
        if (s.size() >= 2 && numel_of(s) > 1) return true;
    }
    return false;
}

// ---- A/B: forward values and gradients against PyTorch ------------------------------------------

class Fixture : public ::testing::TestWithParam<Case> {};

TEST_P(Fixture, Forward) {
    const Case& c = GetParam();
    ASSERT_TRUE(op_table().count(c.op)) << "no table row for op " << c.op;
    Tensors in = make_inputs(c);
    expect_outputs(c, run_case(c, in));
}

INSTANTIATE_TEST_SUITE_P(OpTable, Fixture, ::testing::ValuesIn(all_cases()), param_name);

class Grads : public ::testing::TestWithParam<Case> {};

TEST_P(Grads, Case) {
    const Case& c = GetParam();
    Tensors in = make_inputs(c);
    Tensors outs = run_case(c, in);
    expect_grads(c, in, outs);
}

INSTANTIATE_TEST_SUITE_P(OpTable, Grads, ::testing::ValuesIn(select_cases(has_grads)), param_name);

// ---- C: gradcheck / gradgradcheck ---------------------------------------------------------------

void run_gradchecks(const Case& c, bool second_order) {
    Tensors in = make_inputs(c);
    for (size_t o = 0; o < c.outputs.size(); ++o) {
        if (c.grad_outputs[o].is_null() || c.outputs[o].at("dtype") != "float64") continue;
        GradFn fn = [&c, o](const Tensors& x) { return run_case(c, x).at(o); };
        std::string err = second_order ? gradgradcheck(fn, in) : gradcheck(fn, in);
        EXPECT_EQ(err, "") << "output " << o;
    }
}

class Gradcheck : public ::testing::TestWithParam<Case> {};
TEST_P(Gradcheck, Case) { run_gradchecks(GetParam(), false); }
INSTANTIATE_TEST_SUITE_P(OpTable, Gradcheck,
                         ::testing::ValuesIn(select_cases(float64_differentiable)), param_name);

class GradGradcheck : public ::testing::TestWithParam<Case> {};
TEST_P(GradGradcheck, Case) { run_gradchecks(GetParam(), true); }
INSTANTIATE_TEST_SUITE_P(OpTable, GradGradcheck,
                         ::testing::ValuesIn(select_cases([](const Case& c) {
                             return c.gradgrad && float64_differentiable(c);
                         })),
                         param_name);

// ---- D: non-contiguous inputs -------------------------------------------------------------------

// The same values, stored non-contiguously: transposed storage when the last two dims are > 1,
// else every other element of a buffer twice as long along the last dim of size > 1.
Tensor non_contiguous(const Tensor& x) {
    NoGradGuard ng;
    const int64_t n = x.dim();
    if (n < 2 || x.numel() <= 1) return x.detach();
    if (x.size(-1) > 1 && x.size(-2) > 1)
        return x.detach().transpose(-1, -2).contiguous().transpose(-1, -2);
    int64_t d = n - 1;
    while (d > 0 && x.size(d) == 1) --d;
    Shape big = x.shape();
    big[static_cast<size_t>(d)] *= 2;
    Tensor buf = zeros(big, {.dtype = x.dtype()});
    Tensor v = buf.slice(d, 0, big[static_cast<size_t>(d)], 2);
    v.copy_(x.detach());
    return v;
}

class NonContiguous : public ::testing::TestWithParam<Case> {};

TEST_P(NonContiguous, Case) {
    const Case& c = GetParam();
    Tensors in = make_inputs(c);
    for (auto& t : in) {
        if (t.dim() < 2 || t.numel() <= 1) continue;
        const bool rg = t.requires_grad();
        t = non_contiguous(t);
        ASSERT_FALSE(t.is_contiguous())
            << "could not make a strided copy of " << shape_str(t.shape());
        if (rg) t.requires_grad_(true);
    }
    Tensors outs = run_case(c, in);
    expect_outputs(c, outs, "non-contiguous inputs: ");
    if (has_grads(c)) expect_grads(c, in, outs, "non-contiguous inputs: ");
}

INSTANTIATE_TEST_SUITE_P(OpTable, NonContiguous,
                         ::testing::ValuesIn(select_cases(has_strided_input)), param_name);

// ---- E: zero-size inputs ------------------------------------------------------------------------

class ZeroSize : public ::testing::TestWithParam<Case> {};

TEST_P(ZeroSize, Case) {
    const Case& c = GetParam();
    Tensors in = make_inputs(c);
    Tensors outs;
    ASSERT_NO_THROW(outs = run_case(c, in));
    ASSERT_EQ(outs.size(), c.outputs.size());
    for (size_t i = 0; i < outs.size(); ++i) {
        EXPECT_EQ(shape_str(outs[i].shape()), shape_str(json_shape(c.outputs[i])))
            << "output " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(OpTable, ZeroSize, ::testing::ValuesIn(select_cases(any_zero_size)),
                         param_name);

// ---- F: error inputs
// ------------------------------------------------------------------------------

enum class Kind { shape, dtype, index, value };

struct ErrorCase {
    std::string name;
    std::function<void()> call;
    Kind kind;
    std::vector<std::string> contains;  // stable parts of the message: op name, shapes
};

std::ostream& operator<<(std::ostream& os, const ErrorCase& e) { return os << e.name; }

Tensor f64(const Shape& s) { return zeros(s, {.dtype = DType::float64}); }
Tensor i64(const std::vector<int64_t>& v) { return from_vector<int64_t>(v); }

std::vector<ErrorCase> error_cases() {
    return {
        // unary
        {"neg_bool",
         [] {
             neg(zeros({2, 3}, {.dtype = DType::boolean}));
         },
         Kind::dtype,
         {"neg", "bool", "[2, 3]"}},
        {"gelu_bad_approximate",
         [] { gelu(f64({2}), "fast"); },
         Kind::value,
         {"gelu", "approximate", "fast"}},
        {"clamp_no_bounds",
         [] { clamp(f64({2}), std::nullopt, std::nullopt); },
         Kind::value,
         {"clamp", "min", "max"}},
        // binary
        {"add_shape_mismatch",
         [] {
             add(f64({3, 4}), f64({5}));
         },
         Kind::shape,
         {"add", "[3, 4]", "[5]", "broadcast"}},
        {"mul_shape_mismatch",
         [] {
             mul(f64({2, 3}), f64({3, 2}));
         },
         Kind::shape,
         {"mul", "[2, 3]", "[3, 2]"}},
        {"sub_bool",
         [] { sub(zeros({2}, {.dtype = DType::boolean}), zeros({2}, {.dtype = DType::boolean})); },
         Kind::dtype,
         {"sub", "bool", "[2]"}},
        {"where_float_cond",
         [] { where(f64({3}), f64({3}), f64({3})); },
         Kind::dtype,
         {"where", "condition", "[3]"}},
        {"masked_fill_mask_too_big",
         [] {
             masked_fill(f64({4}), zeros({3, 4}, {.dtype = DType::boolean}), 1.0);
         },
         Kind::shape,
         {"masked_fill", "[3, 4]", "[4]"}},
        {"eq_shape_mismatch", [] { eq(f64({2}), f64({3})); }, Kind::shape, {"eq", "[2]", "[3]"}},
        // reductions
        {"sum_dim_out_of_range",
         [] {
             sum(f64({3, 4}), {2});
         },
         Kind::index,
         {"sum", "dimension out of range"}},
        {"mean_dim_out_of_range",
         [] {
             mean(f64({3, 4}), {-3});
         },
         Kind::index,
         {"mean", "dimension out of range"}},
        {"mean_repeated_dim",
         [] {
             mean(f64({3, 4}), {1, -1});
         },
         Kind::index,
         {"mean", "multiple times"}},
        {"amax_dim_out_of_range",
         [] {
             amax(f64({3, 4}), {5});
         },
         Kind::index,
         {"amax"}},
        {"max_dim_out_of_range",
         [] {
             max(f64({3, 4}), 2);
         },
         Kind::index,
         {"max"}},
        {"argmax_dim_out_of_range",
         [] {
             argmax(f64({3, 4}), 3);
         },
         Kind::index,
         {"argmax"}},
        {"var_dim_out_of_range",
         [] {
             var(f64({3, 4}), {4});
         },
         Kind::index,
         {"var"}},
        {"softmax_dim_out_of_range",
         [] {
             softmax(f64({3, 4}), 2);
         },
         Kind::index,
         {"softmax"}},
        {"logsumexp_dim_out_of_range",
         [] { logsumexp(f64({3}), {1}); },
         Kind::index,
         {"logsumexp"}},
        // linalg
        {"matmul_inner_mismatch",
         [] {
             matmul(f64({3, 4}), f64({5, 6}));
         },
         Kind::shape,
         {"matmul", "[3, 4]", "[5, 6]"}},
        {"matmul_batch_mismatch",
         [] {
             matmul(f64({2, 3, 4}), f64({3, 4, 5}));
         },
         Kind::shape,
         {"matmul", "[2, 3, 4]", "[3, 4, 5]"}},
        {"matmul_bool",
         [] {
             matmul(zeros({3, 4}, {.dtype = DType::boolean}), f64({4, 2}));
         },
         Kind::dtype,
         {"matmul", "bool", "[3, 4]"}},
        {"mm_not_2d",
         [] {
             mm(f64({3}), f64({3, 2}));
         },
         Kind::shape,
         {"mm", "[3]"}},
        {"bmm_batch_mismatch",
         [] {
             bmm(f64({2, 3, 4}), f64({3, 4, 2}));
         },
         Kind::shape,
         {"bmm", "[2, 3, 4]", "[3, 4, 2]"}},
        {"outer_not_1d",
         [] {
             outer(f64({2, 2}), f64({3}));
         },
         Kind::shape,
         {"outer", "[2, 2]"}},
        // shape and indexing
        {"cat_shape_mismatch",
         [] {
             cat({f64({2, 3}), f64({2, 4})}, 0);
         },
         Kind::shape,
         {"cat", "[2, 3]", "[2, 4]"}},
        {"cat_dim_out_of_range",
         [] {
             cat({f64({2, 3}), f64({2, 3})}, 2);
         },
         Kind::index,
         {"cat"}},
        {"stack_shape_mismatch",
         [] {
             stack({f64({2, 3}), f64({3, 2})});
         },
         Kind::shape,
         {"stack", "[2, 3]", "[3, 2]"}},
        {"index_select_out_of_range",
         [] {
             index_select(f64({3, 4}), 0, i64({0, 3}));
         },
         Kind::index,
         {"index_select", "3"}},
        {"index_select_float_index",
         [] {
             index_select(f64({3, 4}), 0, f64({2}));
         },
         Kind::dtype,
         {"index_select", "float64"}},
        {"gather_out_of_range",
         [] {
             gather(f64({3, 4}), 1, from_vector<int64_t>({0, 4, 1}, {3, 1}));
         },
         Kind::index,
         {"gather", "4"}},
        {"scatter_add_shape_mismatch",
         [] {
             scatter_add(f64({3, 4}), 1, from_vector<int64_t>({0, 1, 2}, {3, 1}), f64({2, 1}));
         },
         Kind::shape,
         {"scatter_add", "[3, 1]", "[2, 1]"}},
        {"embedding_out_of_range",
         [] {
             embedding(f64({5, 3}), i64({1, 5}));
         },
         Kind::index,
         {"embedding", "5"}},
        {"embedding_float_indices",
         [] {
             embedding(f64({5, 3}), f64({2}));
         },
         Kind::dtype,
         {"embedding", "float64"}},
        {"one_hot_too_small",
         [] {
             one_hot(i64({0, 3}), 2);
         },
         Kind::value,
         {"one_hot", "3"}},
        {"pad_odd_length",
         [] {
             pad(f64({3, 4}), {1, 2, 3});
         },
         Kind::value,
         {"pad", "3"}},
        {"pad_too_many",
         [] {
             pad(f64({4}), {1, 1, 1, 1});
         },
         Kind::value,
         {"pad", "[4]"}},
        {"repeat_too_few",
         [] {
             repeat(f64({2, 3}), {2});
         },
         Kind::value,
         {"repeat", "[2, 3]"}},
        {"flip_dim_out_of_range",
         [] {
             flip(f64({2, 3}), {2});
         },
         Kind::index,
         {"flip"}},
        {"split_dim_out_of_range",
         [] {
             split(f64({2, 3}), 1, 2);
         },
         Kind::index,
         {"split"}},
        {"tril_1d", [] { tril(f64({3})); }, Kind::shape, {"tril", "[3]"}},
        // views
        {"view_wrong_size",
         [] {
             f64({3, 4}).view({5});
         },
         Kind::shape,
         {"view", "[5]", "[3, 4]"}},
        {"view_strided",
         [] {
             f64({3, 4}).t().view({12});
         },
         Kind::shape,
         {"view", "[12]", "[4, 3]", "reshape"}},
        {"reshape_wrong_size",
         [] {
             f64({3, 4}).reshape({5, -1});
         },
         Kind::shape,
         {"reshape", "[5, -1]", "[3, 4]"}},
        {"permute_wrong_count",
         [] {
             f64({2, 3}).permute({0});
         },
         Kind::shape,
         {"permute"}},
        {"select_out_of_range",
         [] {
             f64({3, 4}).select(1, 4);
         },
         Kind::index,
         {"select", "4"}},
        {"narrow_out_of_range",
         [] {
             f64({3, 4}).narrow(1, 3, 2);
         },
         Kind::index,
         {"narrow"}},
        {"expand_incompatible",
         [] {
             f64({3, 2}).expand({3, 4});
         },
         Kind::shape,
         {"expand"}},
        {"transpose_dim_out_of_range",
         [] {
             f64({3, 4}).transpose(0, 2);
         },
         Kind::index,
         {"transpose"}},
        {"t_3d",
         [] {
             f64({2, 3, 4}).t();
         },
         Kind::shape,
         {"t", "[2, 3, 4]"}},
    };
}

class Errors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(Errors, Raises) {
    const ErrorCase& e = GetParam();
    try {
        e.call();
        FAIL() << "no exception";
    } catch (const Error& err) {
        const std::string msg = err.what();
        switch (e.kind) {
            case Kind::shape:
                EXPECT_NE(dynamic_cast<const ShapeError*>(&err), nullptr)
                    << "not a ShapeError: " << msg;
                break;
            case Kind::dtype:
                EXPECT_NE(dynamic_cast<const DTypeError*>(&err), nullptr)
                    << "not a DTypeError: " << msg;
                break;
            case Kind::index:
                EXPECT_NE(dynamic_cast<const IndexError*>(&err), nullptr)
                    << "not an IndexError: " << msg;
                break;
            case Kind::value:
                EXPECT_NE(dynamic_cast<const ValueError*>(&err), nullptr)
                    << "not a ValueError: " << msg;
                break;
        }
        EXPECT_THAT(msg, ::testing::StartsWith(e.contains.at(0)))
            << "message must start with the op name";
        for (const auto& s : e.contains) EXPECT_THAT(msg, HasSubstr(s));
    }
}

INSTANTIATE_TEST_SUITE_P(OpTable, Errors, ::testing::ValuesIn(error_cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& i) { return i.param.name; });

// ---- G: coverage --------------------------------------------------------------------------------

// Every function declared in include/soma/ops.h, minus helpers that are not ops.
std::set<std::string> declared_ops() {
    const std::string path = std::string(SOMA_FIXTURE_DIR) + "/../../include/soma/ops.h";
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot open " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    // "Tensor name(", "std::vector<Tensor> name(", "ValuesIndices name(", "bool name(" ...
    static const std::regex decl(R"((?:^|\n)\s*[A-Za-z_][\w:<>, ]*?[\s>&*]([A-Za-z_]\w*)\s*\()");
    static const std::set<std::string> excluded = {"allclose", "equal", "sum_to"};
    std::set<std::string> names;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), decl);
         it != std::sregex_iterator(); ++it) {
        const std::string name = (*it)[1];
        if (name.rfind("operator", 0) == 0 || excluded.count(name)) continue;  // operator*
        names.insert(name);
    }
    return names;
}

TEST(OpTableCoverage, EveryOpHasARowAndACase) {
    std::set<std::string> want = declared_ops();
    ASSERT_GE(want.size(), 70u) << "ops.h parse found too few functions";
    for (const char* m :
         {"view", "reshape", "permute", "transpose", "t", "narrow", "slice", "select", "expand",
          "squeeze", "unsqueeze", "flatten", "contiguous", "clone", "to"})
        want.insert(m);
    std::set<std::string> with_case;
    for (const Case& c : all_cases()) with_case.insert(c.op);
    std::vector<std::string> no_row, no_case;
    for (const auto& op : want) {
        if (!op_table().count(op)) no_row.push_back(op);
        if (!with_case.count(op)) no_case.push_back(op);
    }
    EXPECT_THAT(no_row, ::testing::IsEmpty()) << "ops without a row in tests/op_table.h";
    EXPECT_THAT(no_case, ::testing::IsEmpty())
        << "ops without a case in tests/fixtures/ops.json (scripts/gen_fixtures.py)";
}

TEST(OpTableCoverage, EveryCaseHasARow) {
    for (const Case& c : all_cases()) EXPECT_TRUE(op_table().count(c.op)) << c.name;
}

TEST(OpTableCoverage, FixtureLoads) {
    EXPECT_GT(all_cases().size(), 200u);
    std::set<std::string> names;
    for (const Case& c : all_cases()) EXPECT_TRUE(names.insert(c.name).second) << c.name;
}

}  // namespace
}  // namespace soma::testing
