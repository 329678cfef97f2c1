// IDX reader/writer and Fashion-MNIST.
//
// IDX (LeCun's MNIST format): bytes 0-1 are zero, byte 2 the element type, byte 3 the number
// of dims; then one big-endian uint32 per dim; then the elements, big-endian, row-major. The
// whole file is read (and gunzipped) into memory once, validated, then converted in one pass.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/tensor_impl.h"
#include "data/io.h"
#include "soma/data/readers.h"

namespace soma::data {

namespace {

struct IdxType {
    uint8_t code;
    int size;
    const char* name;
};
constexpr std::array<IdxType, 6> kIdxTypes = {{{0x08, 1, "unsigned byte"},
                                               {0x09, 1, "signed byte"},
                                               {0x0B, 2, "int16"},
                                               {0x0C, 4, "int32"},
                                               {0x0D, 4, "float32"},
                                               {0x0E, 8, "float64"}}};

std::string hex(uint64_t v, int digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%0*llX", digits, static_cast<unsigned long long>(v));
    return buf;
}

uint32_t be32(const unsigned char* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// A validated IDX file held in memory.
struct Idx {
    std::vector<unsigned char> bytes;
    IdxType type{};
    Shape dims;
    size_t data_offset = 0;
    const unsigned char* data() const { return bytes.data() + data_offset; }
};

Idx parse_idx(const std::string& path, const char* op) {
    Idx f;
    f.bytes = io::read_file(path, op);
    const size_t n = f.bytes.size();
    const auto& b = f.bytes;
    SOMA_CHECK_VALUE(n >= 4, op, ": '", path, "': truncated header: got ", n,
                     " bytes, expected at least 4 (magic number)");
    const uint32_t magic = be32(b.data());
    SOMA_CHECK_VALUE(b[0] == 0 && b[1] == 0, op, ": '", path, "': wrong magic number: got ",
                     hex(magic, 8), ", expected 0x0000TTDD (TT = type code, DD = number of dims, ",
                     "e.g. 0x00000803 for images). Is this an IDX file?");
    auto type = std::find_if(kIdxTypes.begin(), kIdxTypes.end(),
                             [&](const IdxType& t) { return t.code == b[2]; });
    SOMA_CHECK_VALUE(type != kIdxTypes.end(), op, ": '", path, "': unsupported type code: got ",
                     hex(b[2], 2), ", expected one of 0x08 (ubyte), 0x09 (sbyte), 0x0B (int16), ",
                     "0x0C (int32), 0x0D (float32), 0x0E (float64)");
    f.type = *type;
    const int nd = b[3];
    SOMA_CHECK_VALUE(nd >= 1 && nd <= kMaxDims, op, ": '", path,
                     "': unsupported number of dims: got ", nd, ", expected 1 to ", kMaxDims);
    f.data_offset = 4 + 4 * static_cast<size_t>(nd);
    SOMA_CHECK_VALUE(n >= f.data_offset, op, ": '", path, "': truncated header: got ", n,
                     " bytes, expected at least ", f.data_offset, " for ", nd, " dims");
    // Products of up to 8 uint32 dims can overflow 64 bits: track in long double for the check.
    long double need = f.type.size;
    for (int d = 0; d < nd; ++d) {
        f.dims.push_back(be32(b.data() + 4 + 4 * d));
        need *= static_cast<long double>(f.dims.back());
    }
    const size_t have = n - f.data_offset;
    SOMA_CHECK_VALUE(need <= static_cast<long double>(have), op, ": '", path,
                     "': truncated data: header dims ", f.dims, " of ", f.type.name, " need ",
                     static_cast<double>(need), " bytes, got ", have);
    SOMA_CHECK_VALUE(need == static_cast<long double>(have), op, ": '", path,
                     "': data size disagrees with header dims: dims ", f.dims, " of ", f.type.name,
                     " need ", static_cast<size_t>(need), " bytes, got ", have, " (",
                     have - static_cast<size_t>(need), " extra)");
    return f;
}

// Decodes big-endian elements of `type` into T.
template <class T>
void decode(const Idx& f, T* out) {
    const unsigned char* p = f.data();
    const int64_t n = shape_numel(f.dims);
    switch (f.type.code) {
        case 0x08:
            for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(p[i]);
            break;
        case 0x09:
            for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(static_cast<int8_t>(p[i]));
            break;
        case 0x0B:
            for (int64_t i = 0; i < n; ++i)
                out[i] = static_cast<T>(static_cast<int16_t>((p[2 * i] << 8) | p[2 * i + 1]));
            break;
        case 0x0C:
            for (int64_t i = 0; i < n; ++i)
                out[i] = static_cast<T>(static_cast<int32_t>(be32(p + 4 * i)));
            break;
        case 0x0D:
            for (int64_t i = 0; i < n; ++i) {
                uint32_t u = be32(p + 4 * i);
                float v;
                std::memcpy(&v, &u, 4);
                out[i] = static_cast<T>(v);
            }
            break;
        case 0x0E:
            for (int64_t i = 0; i < n; ++i) {
                uint64_t u = (uint64_t{be32(p + 8 * i)} << 32) | be32(p + 8 * i + 4);
                double v;
                std::memcpy(&v, &u, 8);
                out[i] = static_cast<T>(v);
            }
            break;
    }
}

void put_be32(std::vector<unsigned char>& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

std::string find_split_file(const std::string& dir, const std::string& stem) {
    for (const char* ext : {".gz", ""}) {
        std::string p = dir + "/" + stem + ext;
        if (io::is_file(p)) return p;
    }
    throw Error(
        soma::detail::concat("fashion_mnist: '", dir, "' has neither ", stem, ".gz nor ", stem,
                             ". Expected the files {train,t10k}-{images-idx3,labels-idx1}-ubyte",
                             "[.gz] of Fashion-MNIST"));
}

}  // namespace

Tensor read_idx(const std::string& path) {
    Idx f = parse_idx(path, "read_idx");
    if (f.type.code == 0x0D) {
        Tensor t = make_tensor(f.dims, DType::float32);
        decode(f, t.data_ptr<float>());
        return t;
    }
    if (f.type.code == 0x0E) {
        Tensor t = make_tensor(f.dims, DType::float64);
        decode(f, t.data_ptr<double>());
        return t;
    }
    Tensor t = make_tensor(f.dims, DType::int64);
    decode(f, t.data_ptr<int64_t>());
    return t;
}

Tensor read_idx_images(const std::string& path) {
    Idx f = parse_idx(path, "read_idx_images");
    SOMA_CHECK_VALUE(f.type.code == 0x08, "read_idx_images: '", path, "': images must be ",
                     "unsigned bytes: got type ", hex(f.type.code, 2), " (", f.type.name,
                     "), expected 0x08. read_idx() reads any type");
    SOMA_CHECK_VALUE(f.dims.size() >= 2, "read_idx_images: '", path, "': images need at least ",
                     "2 dims: got dims ", f.dims, ", expected [N, H, W]");
    // One table lookup per pixel: v / 255 exactly as torchvision's ToTensor.
    std::array<float, 256> scale{};
    for (int v = 0; v < 256; ++v) scale[v] = static_cast<float>(v) / 255.0f;
    Tensor t = make_tensor(f.dims, DType::float32);
    float* out = t.data_ptr<float>();
    const unsigned char* p = f.data();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) out[i] = scale[p[i]];
    return t;
}

Tensor read_idx_labels(const std::string& path) {
    Idx f = parse_idx(path, "read_idx_labels");
    SOMA_CHECK_VALUE(f.type.code <= 0x0C, "read_idx_labels: '", path, "': labels must be ",
                     "integers: got type ", hex(f.type.code, 2), " (", f.type.name, ")");
    SOMA_CHECK_VALUE(f.dims.size() == 1, "read_idx_labels: '", path, "': labels must have one ",
                     "dim: got dims ", f.dims, ", expected [N]");
    Tensor t = make_tensor(f.dims, DType::int64);
    decode(f, t.data_ptr<int64_t>());
    return t;
}

TensorDataset read_idx_dataset(const std::string& images_path, const std::string& labels_path) {
    Tensor images = read_idx_images(images_path);
    Tensor labels = read_idx_labels(labels_path);
    SOMA_CHECK_VALUE(images.size(0) == labels.size(0), "read_idx_dataset: image and label ",
                     "counts differ: got ", images.size(0), " images in '", images_path, "' and ",
                     labels.size(0), " labels in '", labels_path, "'");
    // [N, H, W] -> [N, 1, H, W] (one channel, NCHW)
    Shape s = images.shape();
    s.insert(s.begin() + 1, 1);
    return TensorDataset(images.reshape(s), labels);
}

void write_idx(const std::string& path, const Tensor& t) {
    SOMA_CHECK_VALUE(t.defined(), "write_idx: tensor is undefined");
    SOMA_CHECK_SHAPE(t.dim() >= 1, "write_idx: IDX needs at least one dim: got shape ", t.shape());
    uint8_t code = 0x08;
    std::vector<int64_t> ints;
    if (t.dtype() == DType::int64 || t.dtype() == DType::boolean) {
        ints = t.to_vector<int64_t>();
        auto [lo, hi] = std::minmax_element(ints.begin(), ints.end());
        if (lo != ints.end() && (*lo < 0 || *hi > 255)) {
            code = 0x0C;
            SOMA_CHECK_VALUE(*lo >= INT32_MIN && *hi <= INT32_MAX, "write_idx: '", path,
                             "': values must fit int32: got range [", *lo, ", ", *hi, "]");
        }
    } else {
        code = t.dtype() == DType::float32 ? 0x0D : 0x0E;
    }
    std::vector<unsigned char> out = {0, 0, code, static_cast<unsigned char>(t.dim())};
    for (int64_t d : t.shape()) {
        SOMA_CHECK_VALUE(d <= UINT32_MAX, "write_idx: dim ", d, " does not fit IDX's uint32");
        put_be32(out, static_cast<uint32_t>(d));
    }
    if (code == 0x08) {
        for (int64_t v : ints) out.push_back(static_cast<unsigned char>(v));
    } else if (code == 0x0C) {
        for (int64_t v : ints) put_be32(out, static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else if (code == 0x0D) {
        for (float v : t.to_vector<float>()) {
            uint32_t u;
            std::memcpy(&u, &v, 4);
            put_be32(out, u);
        }
    } else {
        for (double v : t.to_vector<double>()) {
            uint64_t u;
            std::memcpy(&u, &v, 8);
            put_be32(out, static_cast<uint32_t>(u >> 32));
            put_be32(out, static_cast<uint32_t>(u));
        }
    }
    io::write_file(path, out.data(), out.size(), io::ends_with(path, ".gz"), "write_idx");
}

// ---- Fashion-MNIST ---------------------------------------------------------------------------

std::string fashion_mnist_dir() {
    const char* env = std::getenv("SOMA_DATA");
    if (env && *env) return std::string(env) + "/fashion-mnist";
    return "/usr/share/datasets/fashion-mnist";
}

TensorDataset fashion_mnist(const std::string& root, bool train) {
    const std::string dir = root.empty() ? fashion_mnist_dir() : root;
    SOMA_CHECK(io::is_directory(dir), "fashion_mnist: directory '", dir, "' not found. ",
               "The Debian package dataset-fashion-mnist provides it (sudo apt-get install ",
               "dataset-fashion-mnist), or pass the path of a directory holding the files");
    const std::string split = train ? "train" : "t10k";
    std::string images = find_split_file(dir, split + "-images-idx3-ubyte");
    std::string labels = find_split_file(dir, split + "-labels-idx1-ubyte");
    return read_idx_dataset(images, labels);
}

FashionMNIST::FashionMNIST(const std::string& root, bool train)
    : TensorDataset(fashion_mnist(root, train)) {}

const std::vector<std::string>& FashionMNIST::classes() {
    static const std::vector<std::string> names = {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return names;
}

}  // namespace soma::data
