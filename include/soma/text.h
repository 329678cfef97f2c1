// soma/text.h — text data (character vocabularies, corpora, truncated-BPTT batches) and a
// character-level LSTM language model with its training loop, evaluation and sampler.
//
//     std::string text = soma::text::load_kjv();               // `bible gen1:1-rev22:21`
//     auto vocab = soma::text::CharVocab::from_text(text);
//     auto split = soma::text::split_tail(vocab.encode(text), 0.05);
//     soma::text::CharLM model({.vocab = vocab.size()});
//     auto report = soma::text::train_charlm(model, split, {.time_budget_s = 600});
//     std::string s = soma::text::sample(model, vocab, "In the beginning", {.length = 300});
//
// Throws soma::Error when a command fails or the Bible packages are missing, soma::ValueError
// for characters outside the vocabulary and bad options.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "soma/nn/layers.h"
#include "soma/nn/rnn.h"
#include "soma/optim.h"

namespace soma::text {

/// Standard output of a shell command; throws soma::Error when it cannot run or exits non-zero.
std::string run_command(const std::string& command);
/// The King James Bible as printed by `bible gen1:1-rev22:21` (Debian: bible-kjv,
/// bible-kjv-text); about 4.3 MB.
std::string load_kjv();

/// Byte-level vocabulary: the distinct bytes of a text, sorted; ids 0..size-1.
class CharVocab {
  public:
    CharVocab() = default;
    explicit CharVocab(std::string chars);  // distinct characters, in id order
    static CharVocab from_text(std::string_view text);
    int64_t size() const { return static_cast<int64_t>(chars_.size()); }
    const std::string& chars() const { return chars_; }
    bool contains(char c) const { return index_[static_cast<unsigned char>(c)] >= 0; }
    int64_t id(char c) const;  // throws ValueError for a character outside the vocabulary
    char chr(int64_t id) const;
    std::vector<int64_t> encode(std::string_view s) const;
    std::string decode(const std::vector<int64_t>& ids) const;

  private:
    std::string chars_;
    std::vector<int64_t> index_ = std::vector<int64_t>(256, -1);
};

/// A token stream split into training text and a held-out tail.
struct TextSplit {
    std::vector<int64_t> train, val;
};
/// The last `val_fraction` of the stream becomes validation (no shuffling: no leakage).
TextSplit split_tail(const std::vector<int64_t>& ids, double val_fraction = 0.05);

/// Batches for truncated backpropagation through time: the stream is cut into `batch_size`
/// parallel rows; batch i holds steps [i*bptt, (i+1)*bptt) of every row, so row b of batch i+1
/// continues row b of batch i and the recurrent state can be carried between them.
class BpttBatches {
  public:
    BpttBatches(const std::vector<int64_t>& ids, int64_t batch_size, int64_t bptt);
    struct Batch {
        Tensor x, y;  // int64 [T, B]; y is x shifted by one step; T = bptt except the last
    };
    int64_t size() const { return num_batches_; }
    Batch operator[](int64_t i) const;
    int64_t tokens() const { return rows_ * batch_size_; }  // tokens the batches cover

  private:
    std::vector<int64_t> data_;  // [rows_ + 1, batch]: column b is row b of the stream
    int64_t batch_size_, bptt_, rows_, num_batches_;
};

struct CharLMOptions {
    int64_t vocab = 0, embed = 64, hidden = 256, layers = 1;
    double dropout = 0;  // between LSTM layers
};
/// Embedding -> LSTM -> Linear. Parameters: embed.weight, lstm.*, head.weight, head.bias.
class CharLM : public nn::Module {
  public:
    explicit CharLM(CharLMOptions o);
    struct Output {
        Tensor logits;  // [T, B, vocab]
        nn::RNNState state;
    };
    /// x int64 [T, B]; state from the previous chunk (undefined: zeros).
    Output forward(const Tensor& x, const nn::RNNState& state);
    Tensor forward(const Tensor& x) override { return forward(x, {}).logits; }
    std::string type_name() const override { return "CharLM"; }
    CharLMOptions options;
    nn::Embedding embed;
    nn::LSTM lstm;
    nn::Linear head;
};

/// Mean bits per character over `ids` (eval mode, no grad, state carried across chunks).
double evaluate_bpc(CharLM& model, const std::vector<int64_t>& ids, int64_t batch_size = 32,
                    int64_t bptt = 256);

struct SampleOptions {
    int64_t length = 300;      // characters generated after the prompt
    double temperature = 0.8;  // > 0; lower is more conservative
    uint64_t seed = 0;
};
/// The prompt followed by `length` sampled characters. Throws ValueError when the prompt has a
/// character outside the vocabulary.
std::string sample(CharLM& model, const CharVocab& vocab, const std::string& prompt,
                   SampleOptions o = {});

struct CharLMProgress {
    int64_t step = 0, tokens = 0, epoch = 0;
    double seconds = 0, train_bpc = 0, tokens_per_s = 0;
};
struct CharLMTrainOptions {
    int64_t batch_size = 64, bptt = 128;
    double lr = 3e-3, clip = 1.0;
    double time_budget_s = 600;  // training clock (callbacks excluded); stops at the first step
                                 // past it
    int64_t max_steps = -1;      // < 0: no step limit (counts start_step)
    uint64_t seed = 0;
    double log_every_s = 30;
    std::function<void(const CharLMProgress&)> on_progress = {};  // every log_every_s
    /// Resuming: steps and tokens already done and seconds already spent (the state restarts
    /// from zeros at the resumed batch), and an optimizer whose state was restored (null: a new
    /// Adam with `lr`).
    int64_t start_step = 0, start_tokens = 0;
    double start_seconds = 0;
    optim::Optimizer* optimizer = nullptr;
    bool evaluate = true;  // validation bpc at the end (report.val_bpc; NaN when false)
};
struct CharLMReport {
    int64_t steps = 0, tokens = 0;
    double seconds = 0, tokens_per_s = 0, train_bpc = 0, val_bpc = 0;
};
/// Adam, truncated BPTT with the state carried between batches (reset each epoch), gradient
/// norm clipping; then validation bpc on split.val.
CharLMReport train_charlm(CharLM& model, const TextSplit& split, const CharLMTrainOptions& o);

// ---- words: tokenizer, vocabulary, the fortune-cookie corpus ----------------------------------

/// Lower-cased words: maximal runs of ASCII letters and digits (an apostrophe inside a word is
/// kept: "don't"); everything else separates. "Don't PANIC, 42!" -> don't, panic, 42.
std::vector<std::string> tokenize_words(std::string_view text);

/// Word vocabulary: id 0 = "<pad>", 1 = "<unk>", then words seen at least min_count times in the
/// training texts, most frequent first (ties alphabetical), at most max_size entries in all.
class WordVocab {
  public:
    static constexpr int64_t pad = 0, unk = 1;
    WordVocab() = default;
    static WordVocab build(const std::vector<std::vector<std::string>>& docs, int64_t min_count = 2,
                           int64_t max_size = 1 << 30);
    explicit WordVocab(std::vector<std::string> words);  // in id order, starting <pad>, <unk>
    int64_t size() const { return static_cast<int64_t>(words_.size()); }
    int64_t id(const std::string& w) const;  // unk when absent
    const std::string& word(int64_t id) const;
    const std::vector<std::string>& words() const { return words_; }
    std::vector<int64_t> encode(const std::vector<std::string>& tokens) const;

  private:
    std::vector<std::string> words_;
    std::unordered_map<std::string, int64_t> index_;
};

/// The entries of a fortune(6) file: texts separated by lines holding only "%", trimmed; empty
/// entries are dropped.
std::vector<std::string> split_fortunes(std::string_view file_text);

/// Texts labelled by the file they come from.
struct LabeledTexts {
    std::vector<std::string> texts;
    std::vector<int64_t> labels;
    std::vector<std::string> classes;  // label -> file name
};
/// The `num_classes` largest fortune files of `dir` (by number of entries; ties by name),
/// skipping *.dat, *.u8, symbolic links, sub-directories and anything named "off" or "*-o".
/// Classes are in decreasing size. Throws soma::Error when fewer files are readable.
LabeledTexts load_fortunes(const std::string& dir = "/usr/share/games/fortunes",
                           int64_t num_classes = 8);

/// A stratified split: per class, a seeded shuffle puts `test_fraction` of its texts in test.
struct TextClassSplit {
    std::vector<int64_t> train, test;  // indices into the LabeledTexts
};
TextClassSplit stratified_split(const LabeledTexts& d, double test_fraction, uint64_t seed);

}  // namespace soma::text
