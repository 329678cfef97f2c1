// The op table: one row per op (soma function or Tensor method), mapping the fixture's op name
// to a call of the soma API. A row takes the case's input tensors and its `attrs` (the op's
// non-tensor arguments, as written by scripts/gen_fixtures.py) and returns every output.
//
//     auto outs = soma::testing::op_table().at("add")({a, b}, {{"alpha", 2.5}});
//
// The Python side (torch_op in scripts/gen_fixtures.py) mirrors this table row for row.
#pragma once

#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "soma/soma.h"

namespace soma::testing {

using Json = nlohmann::json;
using Tensors = std::vector<Tensor>;
using OpFn = std::function<Tensors(const Tensors&, const Json&)>;

/// A JSON number as a Scalar that keeps its kind (1 -> integral, 1.0 -> floating, true -> bool).
inline Scalar json_scalar(const Json& j) {
    if (j.is_boolean()) return Scalar(j.get<bool>());
    if (j.is_number_integer()) return Scalar(j.get<int64_t>());
    return Scalar(j.get<double>());
}
inline int64_t attr_int(const Json& a, const char* key, int64_t def) {
    return a.contains(key) ? a.at(key).get<int64_t>() : def;
}
inline double attr_double(const Json& a, const char* key, double def) {
    if (!a.contains(key)) return def;
    const Json& v = a.at(key);
    if (v.is_string()) {
        std::string s = v.get<std::string>();
        if (s == "inf") return INFINITY;
        if (s == "-inf") return -INFINITY;
        return NAN;
    }
    return v.get<double>();
}
inline bool attr_bool(const Json& a, const char* key, bool def) {
    return a.contains(key) ? a.at(key).get<bool>() : def;
}
inline Shape attr_shape(const Json& a, const char* key) {
    return a.contains(key) ? a.at(key).get<Shape>() : Shape{};
}
inline std::optional<Scalar> attr_scalar(const Json& a, const char* key) {
    if (!a.contains(key) || a.at(key).is_null()) return std::nullopt;
    return json_scalar(a.at(key));
}
inline DType dtype_from_name(const std::string& s) {
    if (s == "float32") return DType::float32;
    if (s == "float64") return DType::float64;
    if (s == "int64") return DType::int64;
    if (s == "bool") return DType::boolean;
    throw ValueError("op_table: unknown dtype name \"" + s + "\"");
}

namespace detail {

inline Tensors one(Tensor t) { return Tensors{std::move(t)}; }

// Rows for ops with one tensor in, one out and no attrs.
template <class F>
OpFn unary(F f) {
    return [f](const Tensors& in, const Json&) { return one(f(in.at(0))); };
}

// Binary ops with a tensor form and optionally a scalar form ({"other": s}).
template <class TT, class TS = std::nullptr_t>
OpFn binary(TT tt, TS ts = nullptr) {
    return [tt, ts](const Tensors& in, const Json& a) {
        if constexpr (!std::is_null_pointer_v<TS>) {
            if (a.contains("other")) return one(ts(in.at(0), json_scalar(a.at("other"))));
        } else {
            (void)a;
            (void)ts;
        }
        return one(tt(in.at(0), in.at(1)));
    };
}

// Reductions taking (dims, keepdim).
template <class F>
OpFn reduction(F f) {
    return [f](const Tensors& in, const Json& a) {
        return one(f(in.at(0), attr_shape(a, "dims"), attr_bool(a, "keepdim", false)));
    };
}

}  // namespace detail

/// Op name -> row. Names are the soma function names; Tensor methods use the method name;
/// operators are op_<name>.
inline const std::map<std::string, OpFn>& op_table() {
    using detail::binary;
    using detail::one;
    using detail::reduction;
    using detail::unary;
    using T = const Tensor&;
    static const std::map<std::string, OpFn> table = {
        // ---- elementwise unary ----
        {"neg", unary([](T x) { return neg(x); })},
        {"abs", unary([](T x) { return abs(x); })},
        {"exp", unary([](T x) { return exp(x); })},
        {"log", unary([](T x) { return log(x); })},
        {"log1p", unary([](T x) { return log1p(x); })},
        {"sqrt", unary([](T x) { return sqrt(x); })},
        {"rsqrt", unary([](T x) { return rsqrt(x); })},
        {"reciprocal", unary([](T x) { return reciprocal(x); })},
        {"square", unary([](T x) { return square(x); })},
        {"sin", unary([](T x) { return sin(x); })},
        {"cos", unary([](T x) { return cos(x); })},
        {"erf", unary([](T x) { return erf(x); })},
        {"sign", unary([](T x) { return sign(x); })},
        {"sigmoid", unary([](T x) { return sigmoid(x); })},
        {"tanh", unary([](T x) { return tanh(x); })},
        {"relu", unary([](T x) { return relu(x); })},
        {"silu", unary([](T x) { return silu(x); })},
        {"logical_not", unary([](T x) { return logical_not(x); })},
        {"pow",
         [](const Tensors& in, const Json& a) {
             std::string form = a.value("form", "tensor_scalar");
             if (form == "tensor_tensor") return one(pow(in.at(0), in.at(1)));
             if (form == "scalar_tensor") return one(pow(json_scalar(a.at("base")), in.at(0)));
             return one(pow(in.at(0), json_scalar(a.at("exponent"))));
         }},
        {"clamp",
         [](const Tensors& in, const Json& a) {
             return one(clamp(in.at(0), attr_scalar(a, "min"), attr_scalar(a, "max")));
         }},
        {"leaky_relu",
         [](const Tensors& in, const Json& a) {
             return one(leaky_relu(in.at(0), attr_double(a, "negative_slope", 0.01)));
         }},
        {"elu",
         [](const Tensors& in, const Json& a) {
             return one(elu(in.at(0), attr_double(a, "alpha", 1.0)));
         }},
        {"gelu",
         [](const Tensors& in, const Json& a) {
             return one(gelu(in.at(0), a.value("approximate", "none")));
         }},
        {"softplus",
         [](const Tensors& in, const Json& a) {
             return one(softplus(in.at(0), attr_double(a, "beta", 1.0),
                                 attr_double(a, "threshold", 20.0)));
         }},

        // ---- elementwise binary ----
        {"add",
         [](const Tensors& in, const Json& a) {
             if (a.contains("other")) return one(add(in.at(0), json_scalar(a.at("other"))));
             Scalar alpha = a.contains("alpha") ? json_scalar(a.at("alpha")) : Scalar(1);
             return one(add(in.at(0), in.at(1), alpha));
         }},
        {"sub",
         [](const Tensors& in, const Json& a) {
             if (a.contains("other")) return one(sub(in.at(0), json_scalar(a.at("other"))));
             Scalar alpha = a.contains("alpha") ? json_scalar(a.at("alpha")) : Scalar(1);
             return one(sub(in.at(0), in.at(1), alpha));
         }},
        {"mul", binary([](T a, T b) { return mul(a, b); }, [](T a, Scalar b) { return mul(a, b); })},
        {"div", binary([](T a, T b) { return div(a, b); }, [](T a, Scalar b) { return div(a, b); })},
        {"maximum", binary([](T a, T b) { return maximum(a, b); })},
        {"minimum", binary([](T a, T b) { return minimum(a, b); })},
        {"eq", binary([](T a, T b) { return eq(a, b); }, [](T a, Scalar b) { return eq(a, b); })},
        {"ne", binary([](T a, T b) { return ne(a, b); }, [](T a, Scalar b) { return ne(a, b); })},
        {"lt", binary([](T a, T b) { return lt(a, b); }, [](T a, Scalar b) { return lt(a, b); })},
        {"le", binary([](T a, T b) { return le(a, b); }, [](T a, Scalar b) { return le(a, b); })},
        {"gt", binary([](T a, T b) { return gt(a, b); }, [](T a, Scalar b) { return gt(a, b); })},
        {"ge", binary([](T a, T b) { return ge(a, b); }, [](T a, Scalar b) { return ge(a, b); })},
        {"logical_and", binary([](T a, T b) { return logical_and(a, b); })},
        {"logical_or", binary([](T a, T b) { return logical_or(a, b); })},
        {"logical_xor", binary([](T a, T b) { return logical_xor(a, b); })},
        {"where",
         [](const Tensors& in, const Json& a) {
             if (a.contains("a")) return one(where(in.at(0), json_scalar(a.at("a")), in.at(1)));
             if (a.contains("b")) return one(where(in.at(0), in.at(1), json_scalar(a.at("b"))));
             return one(where(in.at(0), in.at(1), in.at(2)));
         }},
        {"masked_fill",
         [](const Tensors& in, const Json& a) {
             return one(masked_fill(in.at(0), in.at(1), json_scalar(a.at("value"))));
         }},
        // operators: thin wrappers, a few rows each
        {"op_neg", unary([](T x) { return -x; })},
        {"op_add", binary([](T a, T b) { return a + b; })},
        {"op_sub", binary([](T a, T b) { return a - b; })},
        {"op_mul", binary([](T a, T b) { return a * b; })},
        {"op_div", binary([](T a, T b) { return a / b; })},
        {"op_lt", binary([](T a, T b) { return a < b; })},
        {"op_mul_scalar",
         [](const Tensors& in, const Json& a) { return one(in.at(0) * json_scalar(a.at("other"))); }},
        {"op_rsub_scalar",
         [](const Tensors& in, const Json& a) { return one(json_scalar(a.at("other")) - in.at(0)); }},
        {"op_rdiv_scalar",
         [](const Tensors& in, const Json& a) { return one(json_scalar(a.at("other")) / in.at(0)); }},

        // ---- reductions ----
        {"sum", reduction([](T x, const Shape& d, bool k) { return sum(x, d, k); })},
        {"mean", reduction([](T x, const Shape& d, bool k) { return mean(x, d, k); })},
        {"prod", reduction([](T x, const Shape& d, bool k) { return prod(x, d, k); })},
        {"amax", reduction([](T x, const Shape& d, bool k) { return amax(x, d, k); })},
        {"amin", reduction([](T x, const Shape& d, bool k) { return amin(x, d, k); })},
        {"max",
         [](const Tensors& in, const Json& a) {
             if (!a.contains("dim")) return one(max(in.at(0)));
             auto r = max(in.at(0), attr_int(a, "dim", 0), attr_bool(a, "keepdim", false));
             return Tensors{r.values, r.indices};
         }},
        {"min",
         [](const Tensors& in, const Json& a) {
             if (!a.contains("dim")) return one(min(in.at(0)));
             auto r = min(in.at(0), attr_int(a, "dim", 0), attr_bool(a, "keepdim", false));
             return Tensors{r.values, r.indices};
         }},
        {"argmax",
         [](const Tensors& in, const Json& a) {
             if (!a.contains("dim")) return one(argmax(in.at(0)));
             return one(argmax(in.at(0), attr_int(a, "dim", 0), attr_bool(a, "keepdim", false)));
         }},
        {"argmin",
         [](const Tensors& in, const Json& a) {
             if (!a.contains("dim")) return one(argmin(in.at(0)));
             return one(argmin(in.at(0), attr_int(a, "dim", 0), attr_bool(a, "keepdim", false)));
         }},
        {"var",
         [](const Tensors& in, const Json& a) {
             return one(var(in.at(0), attr_shape(a, "dims"), attr_bool(a, "unbiased", true),
                            attr_bool(a, "keepdim", false)));
         }},
        {"std",
         [](const Tensors& in, const Json& a) {
             return one(soma::std(in.at(0), attr_shape(a, "dims"), attr_bool(a, "unbiased", true),
                                  attr_bool(a, "keepdim", false)));
         }},
        {"norm",
         [](const Tensors& in, const Json& a) {
             return one(norm(in.at(0), attr_double(a, "p", 2.0), attr_shape(a, "dims"),
                             attr_bool(a, "keepdim", false)));
         }},
        {"logsumexp", reduction([](T x, const Shape& d, bool k) { return logsumexp(x, d, k); })},
        {"softmax",
         [](const Tensors& in, const Json& a) {
             return one(softmax(in.at(0), attr_int(a, "dim", -1)));
         }},
        {"log_softmax",
         [](const Tensors& in, const Json& a) {
             return one(log_softmax(in.at(0), attr_int(a, "dim", -1)));
         }},

        // ---- linear algebra ----
        {"matmul", binary([](T a, T b) { return matmul(a, b); })},
        {"mm", binary([](T a, T b) { return mm(a, b); })},
        {"bmm", binary([](T a, T b) { return bmm(a, b); })},
        {"outer", binary([](T a, T b) { return outer(a, b); })},

        // ---- shape and indexing ----
        {"cat", [](const Tensors& in,
                   const Json& a) { return one(cat(in, attr_int(a, "dim", 0))); }},
        {"stack", [](const Tensors& in,
                     const Json& a) { return one(stack(in, attr_int(a, "dim", 0))); }},
        {"split",
         [](const Tensors& in, const Json& a) {
             if (a.contains("sizes"))
                 return split(in.at(0), a.at("sizes").get<std::vector<int64_t>>(),
                              attr_int(a, "dim", 0));
             return split(in.at(0), attr_int(a, "split_size", 1), attr_int(a, "dim", 0));
         }},
        {"chunk",
         [](const Tensors& in, const Json& a) {
             return chunk(in.at(0), attr_int(a, "chunks", 1), attr_int(a, "dim", 0));
         }},
        {"index_select",
         [](const Tensors& in, const Json& a) {
             return one(index_select(in.at(0), attr_int(a, "dim", 0), in.at(1)));
         }},
        {"gather",
         [](const Tensors& in, const Json& a) {
             return one(gather(in.at(0), attr_int(a, "dim", 0), in.at(1)));
         }},
        {"scatter_add",
         [](const Tensors& in, const Json& a) {
             return one(scatter_add(in.at(0), attr_int(a, "dim", 0), in.at(1), in.at(2)));
         }},
        {"embedding",
         [](const Tensors& in, const Json& a) {
             return one(embedding(in.at(0), in.at(1), attr_int(a, "padding_idx", -1)));
         }},
        {"one_hot",
         [](const Tensors& in, const Json& a) {
             return one(one_hot(in.at(0), attr_int(a, "num_classes", -1)));
         }},
        {"pad",
         [](const Tensors& in, const Json& a) {
             return one(pad(in.at(0), a.at("pads").get<std::vector<int64_t>>(),
                            attr_double(a, "value", 0.0)));
         }},
        {"repeat",
         [](const Tensors& in, const Json& a) {
             return one(repeat(in.at(0), attr_shape(a, "repeats")));
         }},
        {"flip",
         [](const Tensors& in, const Json& a) { return one(flip(in.at(0), attr_shape(a, "dims"))); }},
        {"tril",
         [](const Tensors& in, const Json& a) {
             return one(tril(in.at(0), attr_int(a, "diagonal", 0)));
         }},
        {"triu",
         [](const Tensors& in, const Json& a) {
             return one(triu(in.at(0), attr_int(a, "diagonal", 0)));
         }},

        // ---- Tensor view methods ----
        {"view",
         [](const Tensors& in, const Json& a) { return one(in.at(0).view(attr_shape(a, "shape"))); }},
        {"reshape",
         [](const Tensors& in, const Json& a) {
             return one(in.at(0).reshape(attr_shape(a, "shape")));
         }},
        {"permute",
         [](const Tensors& in, const Json& a) {
             return one(in.at(0).permute(attr_shape(a, "dims")));
         }},
        {"transpose",
         [](const Tensors& in, const Json& a) {
             return one(in.at(0).transpose(attr_int(a, "dim0", 0), attr_int(a, "dim1", 1)));
         }},
        {"t", unary([](T x) { return x.t(); })},
        {"narrow",
         [](const Tensors& in, const Json& a) {
             return one(in.at(0).narrow(attr_int(a, "dim", 0), attr_int(a, "start", 0),
                                        attr_int(a, "length", 0)));
         }},
        {"slice",
         [](const Tensors& in, const Json& a) {
             return one(in.at(0).slice(attr_int(a, "dim", 0), attr_int(a, "start", 0),
                                       attr_int(a, "end", 0), attr_int(a, "step", 1)));
         }},
        {"select",
         [](const Tensors& in, const Json& a) {
             return one(in.at(0).select(attr_int(a, "dim", 0), attr_int(a, "index", 0)));
         }},
        {"expand",
         [](const Tensors& in, const Json& a) {
             return one(in.at(0).expand(attr_shape(a, "shape")));
         }},
        {"squeeze",
         [](const Tensors& in, const Json& a) {
             if (a.contains("dim")) return one(in.at(0).squeeze(attr_int(a, "dim", 0)));
             return one(in.at(0).squeeze());
         }},
        {"unsqueeze",
         [](const Tensors& in, const Json& a) {
             return one(in.at(0).unsqueeze(attr_int(a, "dim", 0)));
         }},
        {"flatten",
         [](const Tensors& in, const Json& a) {
             return one(
                 in.at(0).flatten(attr_int(a, "start_dim", 0), attr_int(a, "end_dim", -1)));
         }},
        {"contiguous", unary([](T x) { return x.contiguous(); })},
        {"clone", unary([](T x) { return x.clone(); })},
        {"to",
         [](const Tensors& in, const Json& a) {
             return one(in.at(0).to(dtype_from_name(a.at("dtype").get<std::string>())));
         }},
    };
    return table;
}

}  // namespace soma::testing
