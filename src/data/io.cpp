// Whole-file I/O through zlib's gz* API, which reads plain files unchanged (gzdirect) and
// gzip files decompressed, so every reader takes both without looking at the name.
#include "data/io.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "soma/error.h"

namespace soma::data::io {

namespace {
struct GzCloser {
    void operator()(gzFile f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;
}  // namespace

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_directory(const std::string& path) {
    std::error_code ec;
    return std::filesystem::is_directory(path, ec);
}

bool is_file(const std::string& path) {
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec);
}

std::vector<unsigned char> read_file(const std::string& path, const char* reader) {
    SOMA_CHECK(!is_directory(path), reader, ": cannot open '", path, "': it is a directory");
    errno = 0;
    GzHandle f(gzopen(path.c_str(), "rb"));
    SOMA_CHECK(f != nullptr, reader, ": cannot open '", path,
               "': ", errno ? std::strerror(errno) : "out of memory");
    gzbuffer(f.get(), 1 << 18);
    std::vector<unsigned char> bytes;
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (!ec) bytes.reserve(static_cast<size_t>(size));
    constexpr size_t kChunk = 1 << 20;
    int got = 0;
    do {
        size_t old = bytes.size();
        bytes.resize(old + kChunk);
        got = gzread(f.get(), bytes.data() + old, static_cast<unsigned>(kChunk));
        bytes.resize(old + static_cast<size_t>(std::max(got, 0)));
    } while (got > 0);
    // gzread reports a cut-off stream (Z_BUF_ERROR) only through gzerror, after returning the
    // bytes it could decode.
    int code = Z_OK;
    const char* msg = gzerror(f.get(), &code);
    SOMA_CHECK_T(code == Z_OK, ValueError, reader, ": '", path,
                 "' is a damaged gzip file: ", code == Z_BUF_ERROR ? "truncated gzip stream" : msg,
                 " (after ", bytes.size(), " decompressed bytes)");
    return bytes;
}

void write_file(const std::string& path, const void* data, size_t size, bool gzip,
                const char* writer) {
    errno = 0;
    GzHandle f(gzopen(path.c_str(), gzip ? "wb6" : "wbT"));  // T: plain, no compression
    SOMA_CHECK(f != nullptr, writer, ": cannot open '", path,
               "' for writing: ", errno ? std::strerror(errno) : "out of memory");
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        unsigned n = static_cast<unsigned>(std::min<size_t>(size, 1u << 30));
        int put = gzwrite(f.get(), p, n);
        int code = Z_OK;
        const char* msg = gzerror(f.get(), &code);
        SOMA_CHECK(put > 0, writer, ": writing '", path, "' failed: ", msg);
        p += put;
        size -= static_cast<size_t>(put);
    }
    SOMA_CHECK(gzclose(f.release()) == Z_OK, writer, ": closing '", path, "' failed");
}

}  // namespace soma::data::io
