// safetensors reader/writer and atomic file writes.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/tensor_impl.h"
#include "soma/autograd.h"
#include "soma/io.h"

namespace soma {

namespace {

const char* st_dtype(DType t) {
    switch (t) {
        case DType::float32: return "F32";
        case DType::float64: return "F64";
        case DType::int64: return "I64";
        case DType::boolean: return "BOOL";
    }
    return "?";
}

bool parse_dtype(const std::string& s, DType& out) {
    if (s == "F32")
        out = DType::float32;
    else if (s == "F64")
        out = DType::float64;
    else if (s == "I64")
        out = DType::int64;
    else if (s == "BOOL")
        out = DType::boolean;
    else
        return false;
    return true;
}

[[noreturn]] void bad(const std::string& path, const std::string& what) {
    throw Error("safetensors: " + path + ": " + what);
}

}  // namespace

const Tensor& SafetensorsFile::at(const std::string& name) const {
    for (auto& [n, t] : tensors)
        if (n == name) return t;
    std::string names;
    for (auto& [n, t] : tensors) names += (names.empty() ? "" : ", ") + n;
    throw ValueError("safetensors: no tensor named \"" + name + "\" (file has: " + names + ")");
}

bool SafetensorsFile::contains(const std::string& name) const {
    for (auto& [n, t] : tensors)
        if (n == name) return true;
    return false;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw Error("write: cannot create " + tmp + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw Error("write: writing " + tmp + " failed: " + std::strerror(e));
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw Error("write: flushing " + tmp + " failed: " + std::strerror(errno));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw Error("write: renaming " + tmp + " to " + path + " failed: " + std::strerror(e));
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("read: cannot open " + path + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void save_safetensors(const std::string& path, const NamedTensorList& tensors,
                      const std::map<std::string, std::string>& metadata) {
    NoGradGuard ng;
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    std::string buffer;
    for (auto& [name, t0] : tensors) {
        SOMA_CHECK_VALUE(!name.empty() && name != "__metadata__",
                         "save_safetensors: invalid tensor name \"", name, "\"");
        SOMA_CHECK_VALUE(!header.contains(name), "save_safetensors: duplicate tensor name \"", name,
                         "\"");
        SOMA_CHECK(t0.defined(), "save_safetensors: tensor \"", name, "\" is undefined");
        Tensor t = t0.contiguous();
        size_t nbytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
        size_t begin = buffer.size();
        buffer.append(static_cast<const char*>(t.raw_data()), nbytes);
        header[name] = {{"dtype", st_dtype(t.dtype())},
                        {"shape", t.shape()},
                        {"data_offsets", {begin, begin + nbytes}}};
    }
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::string h = header.dump();
    while ((h.size() + 8) % 8 != 0) h += ' ';
    std::string out(8, '\0');
    uint64_t n = h.size();
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out += h;
    out += buffer;
    write_file_atomic(path, out);
}

SafetensorsFile load_safetensors(const std::string& path) {
    std::string data = read_file(path);
    if (data.size() < 8)
        bad(path, "file is " + std::to_string(data.size()) +
                      " bytes, too short for the 8-byte header length");
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i)
        n |= static_cast<uint64_t>(static_cast<unsigned char>(data[i])) << (8 * i);
    if (n > 100000000ull) bad(path, "header length " + std::to_string(n) + " exceeds 100,000,000");
    if (n > data.size() - 8)
        bad(path, "header length " + std::to_string(n) + " goes beyond the end of the file (" +
                      std::to_string(data.size()) + " bytes): truncated or not a safetensors file");
    std::string hs = data.substr(8, n);
    if (hs.empty() || hs[0] != '{') bad(path, "header does not start with '{'");
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(hs);
    } catch (const std::exception& e) {
        bad(path, std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) bad(path, "header is not a JSON object");
    size_t buf_size = data.size() - 8 - n;
    const char* buf = data.data() + 8 + n;
    SafetensorsFile f;
    std::vector<std::tuple<uint64_t, uint64_t, std::string>> spans;
    for (auto& [name, v] : header.items()) {
        if (name == "__metadata__") {
            if (!v.is_object()) bad(path, "__metadata__ must be an object of strings");
            for (auto& [k, s] : v.items()) {
                if (!s.is_string())
                    bad(path, "__metadata__ value for \"" + k + "\" is not a string");
                f.metadata[k] = s.get<std::string>();
            }
            continue;
        }
        if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
            !v.contains("data_offsets"))
            bad(path, "entry \"" + name + "\" needs dtype, shape and data_offsets");
        DType dt;
        if (!v["dtype"].is_string() || !parse_dtype(v["dtype"].get<std::string>(), dt))
            bad(path, "entry \"" + name + "\" has unsupported dtype " + v["dtype"].dump() +
                          " (supported: F32, F64, I64, BOOL)");
        Shape shape;
        if (!v["shape"].is_array()) bad(path, "entry \"" + name + "\" shape is not an array");
        for (auto& d : v["shape"]) {
            if (!d.is_number_unsigned())
                bad(path, "entry \"" + name + "\" has a bad shape " + v["shape"].dump());
            shape.push_back(d.get<int64_t>());
        }
        auto& off = v["data_offsets"];
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
            !off[1].is_number_unsigned())
            bad(path, "entry \"" + name + "\" data_offsets must be [begin, end]");
        uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
        if (b > e || e > buf_size)
            bad(path, "entry \"" + name + "\" data_offsets [" + std::to_string(b) + ", " +
                          std::to_string(e) + "] out of range (buffer is " +
                          std::to_string(buf_size) + " bytes)");
        uint64_t expect = static_cast<uint64_t>(shape_numel(shape)) * dtype_size(dt);
        if (e - b != expect)
            bad(path, "entry \"" + name + "\" has " + std::to_string(e - b) +
                          " bytes but dtype and shape " + shape_str(shape) + " need " +
                          std::to_string(expect));
        Tensor t = make_tensor(shape, dt);
        if (expect) std::memcpy(t.raw_data(), buf + b, expect);
        spans.emplace_back(b, e, name);
        f.tensors.emplace_back(name, t);
    }
    std::sort(spans.begin(), spans.end());
    uint64_t pos = 0;
    for (auto& [b, e, name] : spans) {
        if (b != pos)
            bad(path, b < pos ? "entry \"" + name + "\" overlaps the previous tensor"
                              : "hole in the data buffer before entry \"" + name + "\"");
        pos = e;
    }
    if (pos != buf_size)
        bad(path, "tensors cover " + std::to_string(pos) + " of " + std::to_string(buf_size) +
                      " buffer bytes (trailing garbage or truncated)");
    std::sort(f.tensors.begin(), f.tensors.end(), [&](auto& a, auto& b2) {
        auto find = [&](const std::string& nm) {
            for (auto& [bb, ee, nn] : spans)
                if (nn == nm) return bb;
            return uint64_t{0};
        };
        return find(a.first) < find(b2.first);
    });
    return f;
}

}  // namespace soma
