#include "soma/dtype.h"

#include "soma/error.h"

namespace soma {

const char* dtype_name(DType t) {
    switch (t) {
        case DType::float32: return "float32";
        case DType::float64: return "float64";
        case DType::int64: return "int64";
        case DType::boolean: return "bool";
    }
    return "?";
}

// Order by category: bool < int64 < float32 < float64 (exactly PyTorch's table for these four).
DType promote_types(DType a, DType b) {
    auto rank = [](DType t) {
        switch (t) {
            case DType::boolean: return 0;
            case DType::int64: return 1;
            case DType::float32: return 2;
            case DType::float64: return 3;
        }
        return 0;
    };
    return rank(a) >= rank(b) ? a : b;
}

std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

std::string Device::str() const {
    return type == DeviceType::cpu ? "cpu" : "cuda:" + std::to_string(index);
}
std::ostream& operator<<(std::ostream& os, Device d) { return os << d.str(); }

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

}  // namespace soma
