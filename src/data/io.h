// Internal: whole-file reads and writes for the readers, gzip-transparent.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace soma::data::io {

/// The file's bytes, decompressed when it is gzip (detected by content). Errors name `reader`
/// and the path: "<reader>: cannot open '<path>': <reason>" or a damaged gzip stream.
std::vector<unsigned char> read_file(const std::string& path, const char* reader);
/// Writes bytes, gzip-compressed when `gzip`.
void write_file(const std::string& path, const void* data, size_t size, bool gzip,
                const char* writer);
bool ends_with(const std::string& s, const std::string& suffix);
bool is_directory(const std::string& path);
bool is_file(const std::string& path);

}  // namespace soma::data::io
