// Shared test helpers: error text capture, substring expectations, tensor -> vector shortcuts.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "soma/tensor.h"

namespace soma::testing {

/// The what() of the E that f throws, or "<no exception>".
template <class E, class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "<no exception>";
}

inline std::vector<float> vf(const Tensor& t) { return t.to_vector<float>(); }
inline std::vector<double> vd(const Tensor& t) { return t.to_vector<double>(); }
inline std::vector<int64_t> vi(const Tensor& t) { return t.to_vector<int64_t>(); }
inline std::vector<bool> vb(const Tensor& t) { return t.to_vector<bool>(); }

}  // namespace soma::testing

#define EXPECT_CONTAINS(haystack, needle)                 \
    do {                                                  \
        const std::string h_ = (haystack);                \
        EXPECT_NE(h_.find(needle), std::string::npos)     \
            << "'" << h_ << "' lacks '" << needle << "'"; \
    } while (0)
