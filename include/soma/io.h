// soma/io.h — safetensors files and atomic writes.
//
// save_safetensors writes the format Python users read with safetensors.torch.load_file:
// u64 header length, a JSON header {"name": {"dtype", "shape", "data_offsets"}, "__metadata__":
// {...}} padded with spaces to a multiple of 8, then the row-major little-endian bytes. Files are
// written to a temporary name, flushed and renamed, so a crash never leaves a half-written file.
// load_safetensors validates everything (header length, JSON, dtypes, offsets covering the buffer
// exactly) and names the file and the problem on any error.
//
//     soma::save_safetensors("model.safetensors", model.state_dict(), {{"epoch", "3"}});
//     auto file = soma::load_safetensors("model.safetensors");
//     model.load_state_dict(file.tensors);
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "soma/tensor.h"

namespace soma {

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
    NamedTensorList tensors;  // in file order (sorted by offset)
    std::map<std::string, std::string> metadata;
    /// The tensor named `name`; throws listing the names present.
    const Tensor& at(const std::string& name) const;
    bool contains(const std::string& name) const;
};

void save_safetensors(const std::string& path, const NamedTensorList& tensors,
                      const std::map<std::string, std::string>& metadata = {});
SafetensorsFile load_safetensors(const std::string& path);

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& bytes);
/// Reads a whole file; throws soma::Error naming the path when it can't.
std::string read_file(const std::string& path);

}  // namespace soma
