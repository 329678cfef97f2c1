// Word-level text: a tokenizer, a vocabulary built from training texts, and the fortune(6)
// corpus as a labelled text-classification data set (one class per fortune file).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "soma/random.h"
#include "soma/text.h"

namespace soma::text {

std::vector<std::string> tokenize_words(std::string_view text) {
    std::vector<std::string> out;
    std::string cur;
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (alnum(c)) {
            cur.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        } else if (c == '\'' && !cur.empty() && i + 1 < text.size() && alnum(text[i + 1])) {
            cur.push_back(c);  // inside a word: don't, o'clock
        } else if (!cur.empty()) {
            out.push_back(std::move(cur));
            cur.clear();
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

WordVocab::WordVocab(std::vector<std::string> words) : words_(std::move(words)) {
    SOMA_CHECK_VALUE(words_.size() >= 2 && words_[0] == "<pad>" && words_[1] == "<unk>",
                     "WordVocab: the first two words must be <pad> and <unk>: got ", words_.size(),
                     " words.");
    for (size_t i = 0; i < words_.size(); ++i) {
        bool fresh = index_.emplace(words_[i], static_cast<int64_t>(i)).second;
        SOMA_CHECK_VALUE(fresh, "WordVocab: repeated word \"", words_[i], "\" at ", i, ".");
    }
}

WordVocab WordVocab::build(const std::vector<std::vector<std::string>>& docs, int64_t min_count,
                           int64_t max_size) {
    SOMA_CHECK_VALUE(min_count >= 1 && max_size >= 2,
                     "WordVocab::build: min_count must be >= 1 "
                     "and max_size >= 2: got ",
                     min_count, " and ", max_size, ".");
    std::map<std::string, int64_t> counts;
    for (const auto& d : docs)
        for (const auto& w : d) ++counts[w];
    std::vector<std::pair<std::string, int64_t>> kept;
    for (auto& [w, n] : counts)
        if (n >= min_count && w != "<pad>" && w != "<unk>") kept.emplace_back(w, n);
    std::stable_sort(kept.begin(), kept.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::vector<std::string> words{"<pad>", "<unk>"};
    for (auto& [w, n] : kept) {
        if (static_cast<int64_t>(words.size()) >= max_size) break;
        words.push_back(w);
    }
    return WordVocab(std::move(words));
}

int64_t WordVocab::id(const std::string& w) const {
    auto it = index_.find(w);
    return it == index_.end() ? unk : it->second;
}

const std::string& WordVocab::word(int64_t i) const {
    SOMA_CHECK_INDEX(i >= 0 && i < size(), "WordVocab: id ", i, " out of range [0, ", size(), ").");
    return words_[static_cast<size_t>(i)];
}

std::vector<int64_t> WordVocab::encode(const std::vector<std::string>& tokens) const {
    std::vector<int64_t> ids;
    ids.reserve(tokens.size());
    for (const auto& t : tokens) ids.push_back(id(t));
    return ids;
}

namespace {
std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}
}  // namespace

std::vector<std::string> split_fortunes(std::string_view file_text) {
    std::vector<std::string> out;
    std::string cur, line;
    std::istringstream in{std::string(file_text)};
    auto flush = [&] {
        std::string t = trim(cur);
        if (!t.empty()) out.push_back(std::move(t));
        cur.clear();
    };
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line == "%") {
            flush();
        } else {
            cur += line;
            cur += '\n';
        }
    }
    flush();
    return out;
}

LabeledTexts load_fortunes(const std::string& dir, int64_t num_classes) {
    namespace fs = std::filesystem;
    SOMA_CHECK_VALUE(num_classes >= 2, "load_fortunes: num_classes must be >= 2: got ", num_classes,
                     ".");
    std::error_code ec;
    SOMA_CHECK(fs::is_directory(dir, ec), "load_fortunes: ", dir,
               " is not a directory. Install the fortunes with: apt-get install fortunes");
    struct File {
        std::string name;
        std::vector<std::string> texts;
    };
    std::vector<File> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        const std::string ext = e.path().extension().string();
        if (e.is_symlink() || !e.is_regular_file() || ext == ".dat" || ext == ".u8" ||
            name == "off" || (name.size() > 2 && name.substr(name.size() - 2) == "-o"))
            continue;
        std::ifstream f(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        auto texts = split_fortunes(ss.str());
        if (!texts.empty()) files.push_back({name, std::move(texts)});
    }
    SOMA_CHECK(static_cast<int64_t>(files.size()) >= num_classes, "load_fortunes: ", dir, " has ",
               files.size(), " fortune files, expected at least ", num_classes, ".");
    std::sort(files.begin(), files.end(), [](const File& a, const File& b) {
        return a.texts.size() != b.texts.size() ? a.texts.size() > b.texts.size() : a.name < b.name;
    });
    LabeledTexts d;
    for (int64_t c = 0; c < num_classes; ++c) {
        File& f = files[static_cast<size_t>(c)];
        d.classes.push_back(f.name);
        for (auto& t : f.texts) {
            d.texts.push_back(std::move(t));
            d.labels.push_back(c);
        }
    }
    return d;
}

TextClassSplit stratified_split(const LabeledTexts& d, double test_fraction, uint64_t seed) {
    SOMA_CHECK_VALUE(test_fraction > 0 && test_fraction < 1,
                     "stratified_split: test_fraction must be in (0, 1): got ", test_fraction, ".");
    Generator gen(seed);
    TextClassSplit s;
    for (int64_t c = 0; c < static_cast<int64_t>(d.classes.size()); ++c) {
        std::vector<int64_t> idx;
        for (size_t i = 0; i < d.labels.size(); ++i)
            if (d.labels[i] == c) idx.push_back(static_cast<int64_t>(i));
        for (size_t i = idx.size(); i > 1; --i) {  // Fisher-Yates
            auto j = static_cast<size_t>(gen.next_below(i));
            std::swap(idx[i - 1], idx[j]);
        }
        auto n_test =
            static_cast<size_t>(std::lround(test_fraction * static_cast<double>(idx.size())));
        s.test.insert(s.test.end(), idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n_test));
        s.train.insert(s.train.end(), idx.begin() + static_cast<std::ptrdiff_t>(n_test), idx.end());
    }
    std::sort(s.train.begin(), s.train.end());
    std::sort(s.test.begin(), s.test.end());
    return s;
}

}  // namespace soma::text
