// soma/data/readers.h — file readers: IDX (MNIST format), CSV, Fashion-MNIST, sklearn's CSVs.
//
// Contract: every reader accepts plain or gzip files (detected by content, not by name) and
// raises soma::ValueError naming the file and what is wrong (and the line and column for CSV)
// for a bad file; a missing file raises soma::Error "<reader>: cannot open '<path>'".
//
//     auto x = soma::data::read_idx_images("train-images-idx3-ubyte.gz");   // [N, 28, 28] in [0,1]
//     soma::data::FashionMNIST train("", /*train=*/true);                  // $SOMA_DATA or
//     /usr/share auto iris = soma::data::sklearn_csv("iris");                          // x [150,
//     4], y [150] auto table = soma::data::read_csv("prices.csv");                      // header
//     auto-detected
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "soma/data/dataset.h"

namespace soma::data {

// ---- IDX -----------------------------------------------------------------------------------
// Header: two zero bytes, a type code (0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32,
// 0x0D float32, 0x0E float64), the number of dims, then each dim as big-endian uint32; then the
// data, big-endian, row-major. The data must fill the dims exactly.

/// The stored array: integer types as int64, 0x0D as float32, 0x0E as float64.
Tensor read_idx(const std::string& path);
/// ubyte images [N, H, W] (or any ubyte array of >= 2 dims) as float32 scaled to [0, 1].
Tensor read_idx_images(const std::string& path);
/// ubyte labels [N] as int64.
Tensor read_idx_labels(const std::string& path);
/// An images file and a labels file as a dataset: inputs [N, 1, H, W] float32 in [0, 1],
/// targets [N] int64. ValueError naming both files when the counts differ.
TensorDataset read_idx_dataset(const std::string& images_path, const std::string& labels_path);
/// Writes `t` as IDX (gzip when the path ends in ".gz"): int64 as ubyte when every value is in
/// [0, 255], else int32 (values must fit); float32 as 0x0D; float64 as 0x0E; boolean as ubyte.
void write_idx(const std::string& path, const Tensor& t);

// ---- Fashion-MNIST -------------------------------------------------------------------------
/// The directory searched when root is "": $SOMA_DATA/fashion-mnist if SOMA_DATA is set, else
/// /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist).
std::string fashion_mnist_dir();
/// The whole split: inputs [N, 1, 28, 28] float32 in [0, 1], targets [N] int64 in 0..9.
/// Files: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] under root.
TensorDataset fashion_mnist(const std::string& root = "", bool train = true);

/// Fashion-MNIST as a Dataset: get(i) gives input [1, 28, 28], target [] (int64).
class FashionMNIST : public TensorDataset {
  public:
    explicit FashionMNIST(const std::string& root = "", bool train = true);
    /// "T-shirt/top", "Trouser", ..., "Ankle boot".
    static const std::vector<std::string>& classes();
};

// ---- CSV -----------------------------------------------------------------------------------
/// A table of numbers with column names (from the header, else "0", "1", ...).
struct Table {
    std::vector<std::string> columns;
    int64_t rows = 0;
    std::vector<double> values;  // row-major, rows * cols()

    int64_t cols() const { return static_cast<int64_t>(columns.size()); }
    double at(int64_t row, int64_t col) const { return values[row * cols() + col]; }
    /// Index of a column by name; ValueError listing the names when absent.
    int64_t column_index(const std::string& name) const;
    /// [rows, cols] (or the columns [first, first + count) when count >= 0).
    Tensor to_tensor(DType dtype = DType::float32, int64_t first = 0, int64_t count = -1) const;
};

struct CsvOptions {
    /// true: the first (unskipped) line names the columns; false: it is data; nullopt (auto): a
    /// header when any of its cells is not a number.
    std::optional<bool> header = std::nullopt;
    /// Cell separator; ' ' means any run of spaces and tabs (as numpy.loadtxt).
    char delimiter = ',';
    int64_t skip_rows = 0;  // lines skipped before the header / data
};

/// Reads a numeric CSV (plain or gzip). Blank lines are skipped, "\r\n" is accepted, header
/// names may be quoted. Every data line must have as many cells as the first one; every cell
/// must be a number (nan/inf allowed) — else ValueError "<path>:<line>:<column>: ...".
Table read_csv(const std::string& path, const CsvOptions& options = {});

/// The directory of python3-sklearn's bundled data sets:
/// /usr/lib/python3/dist-packages/sklearn/datasets/data (or $SOMA_SKLEARN_DATA when set).
std::string sklearn_data_dir();
/// One of python3-sklearn's bundled CSV data sets as features (float32 [N, F]) and target:
///   classification, target int64 [N]:  "iris" (150x4, 3 classes), "wine" (178x13, 3),
///                                      "breast_cancer" (569x30, 2), "digits" (1797x64, 10)
///   regression, target float32:        "diabetes" (442x10, [N]), "linnerud" (20x3, [N, 3]),
///                                      "boston" (506x13, [N])
/// ValueError listing the names for an unknown one.
TensorDataset sklearn_csv(const std::string& name, const std::string& dir = "");

}  // namespace soma::data
