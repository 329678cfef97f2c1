// Internal: calls f(float{}) or f(double{}) for a floating dtype (callers have checked it is
// floating), so a kernel is written once as a template over the element type.
#pragma once

#include "soma/dtype.h"

namespace soma {

template <class F>
decltype(auto) dispatch_floating(DType t, F&& f) {
    if (t == DType::float64) return f(double{});
    return f(float{});
}

}  // namespace soma
