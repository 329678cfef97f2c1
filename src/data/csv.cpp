// Numeric CSV reader and python3-sklearn's bundled data sets.
//
// The file is read whole (gunzipped when needed) and parsed in place: cells are string_views
// into the buffer and numbers go through std::from_chars (locale-independent, exact round trip).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "core/tensor_impl.h"
#include "data/io.h"
#include "soma/data/readers.h"

namespace soma::data {

namespace {

constexpr const char* kWs = " \t\r";

std::string_view trim(std::string_view s) {
    size_t a = s.find_first_not_of(kWs);
    if (a == std::string_view::npos) return {};
    size_t b = s.find_last_not_of(kWs);
    return s.substr(a, b - a + 1);
}

std::string_view unquote(std::string_view s) {
    if (s.size() >= 2 &&
        ((s.front() == '"' && s.back() == '"') || (s.front() == '\'' && s.back() == '\'')))
        return s.substr(1, s.size() - 2);
    return s;
}

// Cells of one line; ' ' splits on runs of blanks, any other delimiter splits exactly.
void split_cells(std::string_view line, char delim, std::vector<std::string_view>& cells) {
    cells.clear();
    if (delim == ' ') {
        size_t i = 0;
        while (true) {
            i = line.find_first_not_of(" \t\r", i);
            if (i == std::string_view::npos) break;
            size_t j = line.find_first_of(" \t\r", i);
            if (j == std::string_view::npos) j = line.size();
            cells.push_back(line.substr(i, j - i));
            i = j;
        }
        return;
    }
    size_t start = 0;
    while (true) {
        size_t j = line.find(delim, start);
        if (j == std::string_view::npos) {
            cells.push_back(trim(line.substr(start)));
            break;
        }
        cells.push_back(trim(line.substr(start, j - start)));
        start = j + 1;
    }
}

bool parse_number(std::string_view cell, double& out) {
    cell = trim(unquote(trim(cell)));
    if (!cell.empty() && cell.front() == '+') cell.remove_prefix(1);
    if (cell.empty()) return false;
    auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), out);
    return ec == std::errc() && end == cell.data() + cell.size();
}

// Lines of a buffer with their 1-based numbers; a trailing '\r' is kept (trimmed by callers).
struct LineReader {
    std::string_view text;
    size_t pos = 0;
    int64_t number = 0;
    bool next(std::string_view& line) {
        if (pos >= text.size()) return false;
        size_t j = text.find('\n', pos);
        if (j == std::string_view::npos) j = text.size();
        line = text.substr(pos, j - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos = j + 1;
        ++number;
        return true;
    }
};

Table parse_csv(std::string_view text, const std::string& path, const CsvOptions& opt) {
    SOMA_CHECK_VALUE(opt.skip_rows >= 0, "read_csv: skip_rows must not be negative: got ",
                     opt.skip_rows);
    SOMA_CHECK_VALUE(opt.delimiter != '\n' && opt.delimiter != '"', "read_csv: delimiter ",
                     "cannot be a newline or a quote");
    LineReader lines{text};
    std::string_view line;
    for (int64_t i = 0; i < opt.skip_rows && lines.next(line); ++i) {
    }
    Table t;
    std::vector<std::string_view> cells;
    bool first = true;
    int64_t ncols = 0;
    while (lines.next(line)) {
        if (trim(line).empty()) continue;
        split_cells(line, opt.delimiter, cells);
        if (first) {
            first = false;
            ncols = static_cast<int64_t>(cells.size());
            bool header = false;
            if (opt.header.has_value()) {
                header = *opt.header;
            } else {
                double v;
                for (auto c : cells) header = header || !parse_number(c, v);
            }
            if (header) {
                for (auto c : cells) t.columns.emplace_back(trim(unquote(c)));
                continue;
            }
            for (int64_t c = 0; c < ncols; ++c) t.columns.push_back(std::to_string(c));
        }
        const auto got = static_cast<int64_t>(cells.size());
        SOMA_CHECK_VALUE(got == ncols, "read_csv: ", path, ":", lines.number, ":",
                         std::min(got, ncols) + 1, ": wrong number of columns: got ", got,
                         ", expected ", ncols, got < ncols ? " (cells missing)" : " (extra cells)");
        for (int64_t c = 0; c < ncols; ++c) {
            double v = 0;
            if (!parse_number(cells[c], v)) {
                std::string name =
                    t.columns[c] == std::to_string(c) ? std::string() : " ('" + t.columns[c] + "')";
                throw ValueError(soma::detail::concat(
                    "read_csv: ", path, ":", lines.number, ":", c + 1, ": column ", c + 1, name,
                    cells[c].empty() ? " is empty" : " is not a number: got '",
                    cells[c].empty() ? "" : std::string(cells[c]), cells[c].empty() ? "" : "'",
                    ", expected a number"));
            }
            t.values.push_back(v);
        }
        ++t.rows;
    }
    return t;
}

std::string_view as_text(const std::vector<unsigned char>& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

int64_t Table::column_index(const std::string& name) const {
    auto it = std::find(columns.begin(), columns.end(), name);
    if (it != columns.end()) return it - columns.begin();
    std::string all;
    for (const auto& c : columns) all += (all.empty() ? "'" : ", '") + c + "'";
    throw ValueError(
        soma::detail::concat("Table: no column named '", name, "': columns are ", all));
}

Tensor Table::to_tensor(DType dtype, int64_t first, int64_t count) const {
    const int64_t nc = cols();
    if (count < 0) count = nc - first;
    SOMA_CHECK_INDEX(first >= 0 && first + count <= nc, "Table::to_tensor: columns [", first, ", ",
                     first + count, ") are out of range for ", nc, " columns");
    Tensor out = make_tensor({rows, count}, DType::float64);
    auto* p = out.data_ptr<double>();
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < count; ++c) p[r * count + c] = values[r * nc + first + c];
    return dtype == DType::float64 ? out : out.to(dtype);
}

Table read_csv(const std::string& path, const CsvOptions& options) {
    std::vector<unsigned char> bytes = io::read_file(path, "read_csv");
    return parse_csv(as_text(bytes), path, options);
}

// ---- python3-sklearn's data sets -------------------------------------------------------------

std::string sklearn_data_dir() {
    const char* env = std::getenv("SOMA_SKLEARN_DATA");
    if (env && *env) return env;
    return "/usr/lib/python3/dist-packages/sklearn/datasets/data";
}

namespace {

// Integer class labels from a column of doubles.
Tensor class_labels(const Table& t, int64_t col, const std::string& path) {
    std::vector<int64_t> y(static_cast<size_t>(t.rows));
    for (int64_t r = 0; r < t.rows; ++r) {
        double v = t.at(r, col);
        SOMA_CHECK_VALUE(v == std::floor(v) && v >= 0, "sklearn_csv: '", path, "': row ", r + 1,
                         ": class label must be a non-negative integer: got ", v);
        y[r] = static_cast<int64_t>(v);
    }
    return from_vector(y, {t.rows});
}

void check_dims(const Table& t, int64_t rows, int64_t cols, const std::string& path) {
    SOMA_CHECK_VALUE(t.rows == rows && t.cols() == cols, "sklearn_csv: '", path,
                     "': unexpected table size: got ", t.rows, " x ", t.cols(), ", expected ", rows,
                     " x ", cols);
}

// iris.csv, wine_data.csv, breast_cancer.csv: a first line "n_samples,n_features,class names",
// then rows of n_features values and an integer class.
TensorDataset counted_classification(const std::string& path) {
    std::vector<unsigned char> bytes = io::read_file(path, "sklearn_csv");
    std::string_view text = as_text(bytes);
    LineReader lines{text};
    std::string_view first;
    std::vector<std::string_view> cells;
    double n = 0, f = 0;
    SOMA_CHECK_VALUE(lines.next(first), "sklearn_csv: '", path, "' is empty");
    split_cells(first, ',', cells);
    SOMA_CHECK_VALUE(cells.size() >= 2 && parse_number(cells[0], n) && parse_number(cells[1], f),
                     "sklearn_csv: ", path, ":1: expected a first line 'n_samples,n_features,",
                     "class names...': got '", std::string(first), "'");
    Table t = parse_csv(text, path, {.header = false, .skip_rows = 1});
    const auto rows = static_cast<int64_t>(n), feats = static_cast<int64_t>(f);
    check_dims(t, rows, feats + 1, path);
    return TensorDataset(t.to_tensor(DType::float32, 0, feats), class_labels(t, feats, path));
}

}  // namespace

TensorDataset sklearn_csv(const std::string& name_in, const std::string& dir_in) {
    const std::string dir = dir_in.empty() ? sklearn_data_dir() : dir_in;
    std::string name = name_in;
    for (const char* ext : {".csv.gz", ".csv"})
        if (io::ends_with(name, ext)) name.resize(name.size() - std::string(ext).size());
    auto file = [&](const std::string& f) {
        std::string p = dir + "/" + f;
        SOMA_CHECK(io::is_file(p), "sklearn_csv: '", p, "' not found. The Debian package ",
                   "python3-sklearn provides it (sudo apt-get install python3-sklearn), or pass ",
                   "the directory holding sklearn's CSV files");
        return p;
    };
    if (name == "iris") return counted_classification(file("iris.csv"));
    if (name == "wine" || name == "wine_data") return counted_classification(file("wine_data.csv"));
    if (name == "breast_cancer") return counted_classification(file("breast_cancer.csv"));
    if (name == "digits") {
        std::string p = file("digits.csv.gz");
        Table t = read_csv(p, {.header = false});
        check_dims(t, t.rows, 65, p);
        return TensorDataset(t.to_tensor(DType::float32, 0, 64), class_labels(t, 64, p));
    }
    if (name == "boston" || name == "boston_house_prices") {
        // A first line "506,13,,..." then quoted column names; the target is MEDV (last).
        std::string p = file("boston_house_prices.csv");
        Table t = read_csv(p, {.header = true, .skip_rows = 1});
        check_dims(t, 506, 14, p);
        return TensorDataset(t.to_tensor(DType::float32, 0, 13),
                             t.to_tensor(DType::float32, 13, 1).reshape({t.rows}));
    }
    if (name == "diabetes" || name == "diabetes_data_raw") {
        // Unscaled features (sklearn's load_diabetes(scaled=False)); blank-separated files.
        std::string px = file("diabetes_data_raw.csv.gz"), py = file("diabetes_target.csv.gz");
        Table x = read_csv(px, {.header = false, .delimiter = ' '});
        Table y = read_csv(py, {.header = false, .delimiter = ' '});
        check_dims(x, 442, 10, px);
        check_dims(y, 442, 1, py);
        return TensorDataset(x.to_tensor(), y.to_tensor().reshape({y.rows}));
    }
    if (name == "linnerud") {
        std::string px = file("linnerud_exercise.csv"), py = file("linnerud_physiological.csv");
        Table x = read_csv(px, {.header = true, .delimiter = ' '});
        Table y = read_csv(py, {.header = true, .delimiter = ' '});
        check_dims(x, 20, 3, px);
        check_dims(y, 20, 3, py);
        return TensorDataset(x.to_tensor(), y.to_tensor());
    }
    throw ValueError(soma::detail::concat(
        "sklearn_csv: unknown data set '", name_in, "': expected ",
        "one of iris, wine, breast_cancer, digits, diabetes, ", "linnerud, boston"));
}

}  // namespace soma::data
