// Workflows: character language model and text classification recipes (issue 5).
//
//   charlm-kjv      character LSTM language model on the King James Bible (`bible` command),
//                   trained for a time budget (--seconds, default 600); validation bits per
//                   character on the last 5% of the text; `soma generate` samples from it.
//   topic-fortunes  topic classification of fortune(6) cookies (one class per file, the largest
//                   8 files): Embedding + bidirectional GRU over the words, with lengths; beside
//                   it a bag-of-words logistic regression on the same split as the baseline.
//
// Both write OUT/metrics.csv, OUT/curves.png, OUT/checkpoint.safetensors (model, optimizer and
// progress; --resume continues from it) and OUT/model.safetensors, report progress on stderr and
// end with one JSON line on stdout.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "recipe.h"
#include "soma/autograd.h"
#include "soma/io.h"
#include "soma/nn/functional.h"
#include "soma/ops.h"
#include "soma/parallel.h"
#include "soma/random.h"
#include "soma/text.h"
#include "soma/train.h"
#include "workflows.h"

namespace soma::app {

namespace {

namespace fs = std::filesystem;
namespace tx = soma::text;
namespace F = soma::nn::functional;

std::string meta_at(const std::map<std::string, std::string>& m, const std::string& k,
                    const std::string& file) {
    auto it = m.find(k);
    if (it == m.end()) throw UsageError(file + ": metadata entry '" + k + "' is missing");
    return it->second;
}

// Loads a checkpoint (keys "model.*") or a model file (plain keys) into `model`.
std::map<std::string, std::string> load_weights(const std::string& path, nn::Module& model) {
    SafetensorsFile f;
    try {
        f = load_safetensors(path);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    nn::NamedTensors sd;
    const std::string pre = "model.";
    bool ckpt = false;
    for (auto& [k, v] : f.tensors) ckpt = ckpt || k.rfind(pre, 0) == 0;
    for (auto& [k, v] : f.tensors) {
        if (!ckpt)
            sd.emplace_back(k, v);
        else if (k.rfind(pre, 0) == 0)
            sd.emplace_back(k.substr(pre.size()), v);
    }
    try {
        model.load_state_dict(sd);
    } catch (const Error& e) {
        throw UsageError(path + ": " + e.what());
    }
    return f.metadata;
}

void check_common(const TrainArgs& a, const std::string& name, bool by_clock) {
    if (a.steps > 0) throw UsageError(name + ": --steps does not apply; use --max-batches");
    if (!by_clock && a.seconds > 0)
        throw UsageError(name + ": --seconds does not apply; use --epochs");
    if (by_clock && a.epochs >= 0)
        throw UsageError(name + ": trains by the clock; use --seconds instead of --epochs");
    if (a.threads > 0) set_num_threads(a.threads);
}

// ==== charlm-kjv =================================================================================

constexpr const char* kCharLM = "charlm-kjv";

std::string encode_vocab(const tx::CharVocab& v) {
    std::string s;
    for (char c : v.chars())
        s += (s.empty() ? "" : ",") + std::to_string(static_cast<unsigned char>(c));
    return s;
}

tx::CharVocab decode_vocab(const std::string& s, const std::string& file) {
    std::string chars;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        int v = -1;
        try {
            v = std::stoi(item);
        } catch (const std::exception&) {
        }
        if (v < 0 || v > 255) throw UsageError(file + ": bad vocabulary entry '" + item + "'");
        chars.push_back(static_cast<char>(v));
    }
    return tx::CharVocab(chars);
}

tx::CharLMOptions charlm_options_from(const std::map<std::string, std::string>& m,
                                      const std::string& file, int64_t vocab) {
    try {
        return {.vocab = vocab,
                .embed = std::stoll(meta_at(m, "embed", file)),
                .hidden = std::stoll(meta_at(m, "hidden", file)),
                .layers = std::stoll(meta_at(m, "layers", file))};
    } catch (const std::invalid_argument&) {
        throw UsageError(file + ": bad model sizes in the metadata");
    }
}

std::string load_kjv_or_usage() {
    try {
        return tx::load_kjv();
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
}

void write_bpc_csv(const std::string& path, const nlohmann::json& hist) {
    std::ofstream f(path);
    f << "log,step,tokens,seconds,train_bpc,val_bpc\n";
    int i = 0;
    for (auto& h : hist)
        f << ++i << "," << h["step"].get<int64_t>() << "," << h["tokens"].get<int64_t>() << ","
          << h["seconds"].get<double>() << "," << h["train_bpc"].get<double>() << ","
          << h["val_bpc"].get<double>() << "\n";
}

void plot_bpc(const std::string& path, const nlohmann::json& hist) {
    std::vector<train::EpochLog> logs;
    for (auto& h : hist) {
        train::EpochLog l;
        l.epoch = static_cast<int64_t>(logs.size()) + 1;
        l.train_loss = h["train_bpc"].get<double>();
        l.val_loss = h["val_bpc"].get<double>();
        l.seconds = h["seconds"].get<double>();
        logs.push_back(l);
    }
    train::plot_curves_png(path, logs, train::Task::classification,
                           "charlm-kjv: bits per character (train, validation) per log");
}

int charlm_train(const TrainArgs& a) {
    check_common(a, kCharLM, true);
    Sets sets(
        kCharLM, a.sets,
        {"embed", "hidden", "layers", "bptt", "clip", "val_fraction", "log_every", "eval_chars"});
    const int64_t embed = sets.integer("embed", 64), hidden = sets.integer("hidden", 256),
                  layers = sets.integer("layers", 1), bptt = sets.integer("bptt", 128);
    const int64_t batch = a.batch_size > 0 ? a.batch_size : 64;
    const double lr = a.lr > 0 ? a.lr : 3e-3, clip = sets.real("clip", 1.0);
    const double val_fraction = sets.real("val_fraction", 0.05, 1e-6);
    const double log_every = sets.real("log_every", 60, 0);
    // Progress evaluations use the first eval_chars of the validation text (0: all of it);
    // the final val_bpc always uses all of it.
    const int64_t eval_chars = sets.integer("eval_chars", 50000, 0);
    const double seconds = a.seconds > 0 ? a.seconds : 600;
    const uint64_t seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : 0;
    if (val_fraction >= 0.5) throw UsageError("charlm-kjv: val_fraction must be below 0.5");
    const std::string out = a.out.empty() ? "runs/charlm-kjv" : a.out;
    fs::create_directories(out);
    const std::string ckpt = out + "/checkpoint.safetensors";
    StopOnSigint sig;

    const std::string text = load_kjv_or_usage();
    const auto vocab = tx::CharVocab::from_text(text);
    const auto split = tx::split_tail(vocab.encode(text), val_fraction);
    const int64_t batches_per_epoch = tx::BpttBatches(split.train, batch, bptt).size();
    manual_seed(seed);
    tx::CharLM model({.vocab = vocab.size(), .embed = embed, .hidden = hidden, .layers = layers});
    optim::Adam opt(model.parameters(), {.lr = lr});
    std::map<std::string, std::string> meta{{"recipe", kCharLM},
                                            {"vocab", encode_vocab(vocab)},
                                            {"embed", std::to_string(embed)},
                                            {"hidden", std::to_string(hidden)},
                                            {"layers", std::to_string(layers)}};
    nlohmann::json hist = nlohmann::json::array();
    int64_t start_step = 0, start_tokens = 0;
    double start_seconds = 0;
    if (a.resume && fs::exists(ckpt)) {
        std::map<std::string, std::string> m;
        try {
            m = train::load_checkpoint(ckpt, model, &opt);
        } catch (const Error& e) {
            throw UsageError(std::string("--resume: ") + e.what());
        }
        if (m["embed"] != meta["embed"] || m["hidden"] != meta["hidden"] ||
            m["layers"] != meta["layers"] || m["vocab"] != meta["vocab"])
            throw UsageError("--resume: " + ckpt +
                             " holds a different model (sizes or vocabulary)");
        start_step = std::stoll(m["step"]);
        start_tokens = std::stoll(m["tokens"]);
        start_seconds = std::stod(m["seconds"]);
        hist = nlohmann::json::parse(m["history"]);
    }
    if (!a.quiet)
        std::fprintf(stderr,
                     "soma train charlm-kjv: %zu characters (vocabulary %lld), train %zu, val %zu; "
                     "%s, %lld parameters; %lld batches of %lld x %lld per epoch; budget %.0f s "
                     "(%s%.0f s done), %d threads, output in %s/\n",
                     text.size(), static_cast<long long>(vocab.size()), split.train.size(),
                     split.val.size(), model.to_string().c_str(),
                     static_cast<long long>(model.num_parameters()),
                     static_cast<long long>(batches_per_epoch), static_cast<long long>(bptt),
                     static_cast<long long>(batch), seconds, a.resume ? "resumed, " : "",
                     start_seconds, get_num_threads(), out.c_str());
    const std::vector<int64_t> eval_ids =
        eval_chars > 0 && eval_chars < static_cast<int64_t>(split.val.size())
            ? std::vector<int64_t>(split.val.begin(), split.val.begin() + eval_chars)
            : split.val;
    auto save = [&](const tx::CharLMProgress& p) {
        auto m = meta;
        m["step"] = std::to_string(p.step);
        m["tokens"] = std::to_string(p.tokens);
        m["seconds"] = jnum(p.seconds);
        m["history"] = hist.dump();
        train::save_checkpoint(ckpt, model, &opt, nullptr, m);
        write_bpc_csv(out + "/metrics.csv", hist);
        plot_bpc(out + "/curves.png", hist);
    };
    tx::CharLMTrainOptions to{.batch_size = batch,
                              .bptt = bptt,
                              .lr = lr,
                              .clip = clip,
                              .time_budget_s = seconds,
                              .max_steps = a.max_batches > 0 ? start_step + a.max_batches : -1,
                              .seed = seed,
                              .log_every_s = log_every,
                              .on_progress = {},
                              .start_step = start_step,
                              .start_tokens = start_tokens,
                              .start_seconds = start_seconds,
                              .optimizer = &opt,
                              .evaluate = false};
    to.on_progress = [&](const tx::CharLMProgress& p) {
        const double vb = tx::evaluate_bpc(model, eval_ids);
        hist.push_back({{"step", p.step},
                        {"tokens", p.tokens},
                        {"seconds", p.seconds},
                        {"train_bpc", p.train_bpc},
                        {"val_bpc", vb}});
        save(p);
        if (!a.quiet)
            std::fprintf(stderr,
                         "%6.0fs step %6lld epoch %.2f  train bpc %.3f  val bpc %.3f  %.0f "
                         "tokens/s\n",
                         p.seconds, static_cast<long long>(p.step),
                         static_cast<double>(p.step) / static_cast<double>(batches_per_epoch),
                         p.train_bpc, vb, p.tokens_per_s);
        if (g_stop) throw Error("interrupted");
    };
    tx::CharLMReport rep;
    if (int rc = run_interruptible(
            ckpt, [&] { rep = tx::train_charlm(model, split, to); }, "progress"))
        return rc;
    const double val_bpc = tx::evaluate_bpc(model, split.val);
    save_safetensors(out + "/model.safetensors", model.state_dict(), meta);
    const std::string sample =
        tx::sample(model, vocab, "In the beginning", {.length = 200, .temperature = 0.8});
    if (!a.quiet)
        std::fprintf(stderr,
                     "trained %.0f s, %lld steps, %.0f tokens/s; validation %.4f bits per "
                     "character\nsample: %s\nwrote %s, %s/model.safetensors, %s/metrics.csv, "
                     "%s/curves.png\n",
                     rep.seconds, static_cast<long long>(rep.steps), rep.tokens_per_s, val_bpc,
                     sample.c_str(), ckpt.c_str(), out.c_str(), out.c_str(), out.c_str());
    std::printf(
        "{\"recipe\":\"charlm-kjv\",\"val_bpc\":%s,\"train_bpc\":%s,\"steps\":%lld,\"tokens\":"
        "%lld,\"seconds\":%s,\"tokens_per_s\":%s,\"threads\":%d,\"out\":\"%s\"}\n",
        jnum(val_bpc).c_str(), jnum(rep.train_bpc).c_str(), static_cast<long long>(rep.steps),
        static_cast<long long>(rep.tokens), jnum(rep.seconds).c_str(),
        jnum(rep.tokens_per_s).c_str(), get_num_threads(), out.c_str());
    return 0;
}

std::unique_ptr<tx::CharLM> charlm_load(const std::string& path, tx::CharVocab& vocab) {
    SafetensorsFile f;
    try {
        f = load_safetensors(path);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    vocab = decode_vocab(meta_at(f.metadata, "vocab", path), path);
    auto model = std::make_unique<tx::CharLM>(charlm_options_from(f.metadata, path, vocab.size()));
    load_weights(path, *model);
    model->eval();
    return model;
}

int charlm_generate(const GenerateArgs& g) {
    if (g.threads > 0) set_num_threads(g.threads);
    if (g.length < 0) throw UsageError("generate: --length must be >= 0");
    if (!(g.temperature > 0)) throw UsageError("generate: --temperature must be positive");
    tx::CharVocab vocab;
    auto model = charlm_load(g.checkpoint, vocab);
    const std::string prompt = g.prompt.empty() ? "In the beginning" : g.prompt;
    for (char c : prompt)
        if (!vocab.contains(c))
            throw UsageError("generate: the prompt has a character outside the checkpoint's " +
                             std::to_string(vocab.size()) + "-character vocabulary (byte " +
                             std::to_string(static_cast<unsigned char>(c)) + ")");
    const std::string s = tx::sample(
        *model, vocab, prompt,
        {.length = g.length, .temperature = g.temperature, .seed = static_cast<uint64_t>(g.seed)});
    std::printf("%s\n", s.c_str());
    nlohmann::json j{{"recipe", kCharLM},  {"prompt", prompt},
                     {"length", g.length}, {"temperature", g.temperature},
                     {"seed", g.seed},     {"characters", s.size()}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
}

int charlm_eval(const std::string& path, int threads) {
    if (threads > 0) set_num_threads(threads);
    tx::CharVocab vocab;
    auto model = charlm_load(path, vocab);
    const std::string text = load_kjv_or_usage();
    if (tx::CharVocab::from_text(text).chars() != vocab.chars())
        throw UsageError(path + ": the vocabulary differs from this Bible text's");
    const auto split = tx::split_tail(vocab.encode(text), 0.05);
    const double vb = tx::evaluate_bpc(*model, split.val);
    std::fprintf(stderr, "validation (last 5%%): %.4f bits per character\n", vb);
    std::printf("{\"recipe\":\"charlm-kjv\",\"val_bpc\":%s}\n", jnum(vb).c_str());
    return 0;
}

// ==== topic-fortunes =============================================================================

constexpr const char* kTopic = "topic-fortunes";

struct TopicConfig {
    int64_t classes = 8, min_count = 2, max_len = 100, embed = 64, hidden = 64;
    double test_fraction = 0.2, dropout = 0.3;
    // Share of the training texts held out for validation: the epoch (of the GRU and of the
    // baseline) is chosen on it, so the test split is looked at once, at the end.
    double val_fraction = 0.15;
    std::string dir = "/usr/share/games/fortunes";
};

struct TopicData {
    tx::LabeledTexts d;
    tx::TextClassSplit split;  // train excludes the validation texts
    std::vector<int64_t> val;  // validation texts (from the training side of the split)
    tx::WordVocab vocab;
    std::vector<std::vector<int64_t>> ids;  // per text, truncated to max_len, >= 1 token
};

TopicData topic_data(const TopicConfig& c, uint64_t seed) {
    TopicData t;
    try {
        t.d = tx::load_fortunes(c.dir, c.classes);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    t.split = tx::stratified_split(t.d, c.test_fraction, seed);
    if (c.val_fraction > 0) {
        // Stratified again, within the training texts.
        tx::LabeledTexts tr;
        tr.classes = t.d.classes;
        for (int64_t i : t.split.train) tr.labels.push_back(t.d.labels[static_cast<size_t>(i)]);
        const tx::TextClassSplit inner = tx::stratified_split(tr, c.val_fraction, seed + 7);
        std::vector<int64_t> train;
        for (int64_t k : inner.train) train.push_back(t.split.train[static_cast<size_t>(k)]);
        for (int64_t k : inner.test) t.val.push_back(t.split.train[static_cast<size_t>(k)]);
        t.split.train = std::move(train);
    }
    std::vector<std::vector<std::string>> toks;
    for (auto& s : t.d.texts) toks.push_back(tx::tokenize_words(s));
    std::vector<std::vector<std::string>> train_docs;
    for (int64_t i : t.split.train) train_docs.push_back(toks[static_cast<size_t>(i)]);
    t.vocab = tx::WordVocab::build(train_docs, c.min_count);
    for (auto& tk : toks) {
        auto ids = t.vocab.encode(tk);
        if (static_cast<int64_t>(ids.size()) > c.max_len)
            ids.resize(static_cast<size_t>(c.max_len));
        if (ids.empty()) ids.push_back(tx::WordVocab::unk);
        t.ids.push_back(std::move(ids));
    }
    return t;
}

// Embedding -> bidirectional GRU (lengths) -> [h_forward, h_backward, max over time] -> Linear.
struct TopicRNN : nn::Module {
    nn::Embedding embed;
    nn::GRU gru;
    nn::Linear head;
    double dropout;
    TopicRNN(int64_t vocab, int64_t classes, const TopicConfig& c)
        : embed({.num = vocab, .dim = c.embed, .padding_idx = tx::WordVocab::pad}),
          gru({.input_size = c.embed, .hidden_size = c.hidden, .bidirectional = true}),
          head({.in = 4 * c.hidden, .out = classes}),
          dropout(c.dropout) {
        register_module("embed", embed);
        register_module("gru", gru);
        register_module("head", head);
    }
    std::string type_name() const override { return "TopicRNN"; }
    Tensor forward(const Tensor& ids) override { return forward(ids, {}); }
    // ids int64 [T, B] (padded with 0), lengths int64 [B].
    Tensor forward(const Tensor& ids, const Tensor& lengths) {
        Tensor e = F::dropout(embed(ids), dropout, is_training());
        nn::RNNOutput r = gru(e, {}, lengths);
        // Padded outputs are zero and valid ones are in (-1, 1): max over time is the max over
        // the valid steps, or 0 when it is larger (a harmless floor).
        Tensor pooled = amax(r.output, {0});
        Tensor feat = cat({r.h[0], r.h[1], pooled}, 1);
        return head(F::dropout(feat, dropout, is_training()));
    }
};

std::pair<Tensor, Tensor> pad_batch(const TopicData& t, const std::vector<int64_t>& idx) {
    int64_t T = 1;
    for (int64_t i : idx)
        T = std::max<int64_t>(T, static_cast<int64_t>(t.ids[static_cast<size_t>(i)].size()));
    const auto B = static_cast<int64_t>(idx.size());
    std::vector<int64_t> x(static_cast<size_t>(T * B), tx::WordVocab::pad), len(idx.size());
    for (int64_t b = 0; b < B; ++b) {
        const auto& s = t.ids[static_cast<size_t>(idx[static_cast<size_t>(b)])];
        len[static_cast<size_t>(b)] = static_cast<int64_t>(s.size());
        for (size_t k = 0; k < s.size(); ++k)
            x[k * static_cast<size_t>(B) + static_cast<size_t>(b)] = s[k];
    }
    return {from_vector<int64_t>(x, {T, B}), from_vector<int64_t>(len)};
}

Tensor labels_of(const TopicData& t, const std::vector<int64_t>& idx) {
    std::vector<int64_t> y;
    for (int64_t i : idx) y.push_back(t.d.labels[static_cast<size_t>(i)]);
    return from_vector<int64_t>(y);
}

// Mean loss and accuracy of `logits_of(batch indices)` over `set`.
template <class Fn>
std::pair<double, double> eval_set(const TopicData& t, const std::vector<int64_t>& set,
                                   Fn logits_of, int64_t max_batches) {
    NoGradGuard ng;
    double loss = 0, correct = 0, n = 0;
    const int64_t bs = 256;
    for (int64_t s = 0, k = 0; s < static_cast<int64_t>(set.size()); s += bs, ++k) {
        if (max_batches > 0 && k >= max_batches) break;
        std::vector<int64_t> idx(
            set.begin() + s,
            set.begin() + std::min<int64_t>(s + bs, static_cast<int64_t>(set.size())));
        Tensor y = labels_of(t, idx), logits = logits_of(idx);
        loss += F::cross_entropy(logits, y).item() * static_cast<double>(idx.size());
        correct += eq(argmax(logits, 1), y).sum().item();
        n += static_cast<double>(idx.size());
    }
    return {loss / n, correct / n};
}

// Bag of words: log(1 + count) per vocabulary word, [B, V].
Tensor bow_features(const TopicData& t, const std::vector<int64_t>& idx) {
    const int64_t V = t.vocab.size();
    std::vector<float> x(idx.size() * static_cast<size_t>(V), 0.0f);
    for (size_t b = 0; b < idx.size(); ++b)
        for (int64_t w : t.ids[static_cast<size_t>(idx[b])])
            if (w != tx::WordVocab::unk)
                x[b * static_cast<size_t>(V) + static_cast<size_t>(w)] += 1;
    for (auto& v : x) v = std::log1p(v);
    return from_vector<float>(x, {static_cast<int64_t>(idx.size()), V});
}

std::vector<int64_t> shuffled(std::vector<int64_t> v, Generator& g) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[g.next_below(i)]);
    return v;
}

// Logistic regression on bag-of-words features, trained by Soma (Adam, L2 via weight decay).
// The epoch with the best validation accuracy is kept (as for the GRU); returns {test accuracy,
// validation accuracy}.
std::pair<double, double> train_baseline(const TopicData& t, uint64_t seed, int64_t epochs,
                                         int64_t max_batches, bool quiet) {
    manual_seed(seed + 1);
    nn::Linear lr({.in = t.vocab.size(), .out = static_cast<int64_t>(t.d.classes.size())});
    optim::Adam opt(lr.parameters(), {.lr = 0.01, .weight_decay = 1e-4});
    Generator g(seed + 2);
    auto logits = [&](const std::vector<int64_t>& idx) { return lr(bow_features(t, idx)); };
    double best_val = -1;
    int64_t best_epoch = 0;
    nn::NamedTensors best;
    for (int64_t e = 0; e < epochs; ++e) {
        auto order = shuffled(t.split.train, g);
        int64_t k = 0;
        for (size_t s = 0; s < order.size(); s += 64, ++k) {
            if (max_batches > 0 && k >= max_batches) break;
            std::vector<int64_t> idx(
                order.begin() + static_cast<std::ptrdiff_t>(s),
                order.begin() + static_cast<std::ptrdiff_t>(std::min(s + 64, order.size())));
            Tensor loss = F::cross_entropy(logits(idx), labels_of(t, idx));
            opt.zero_grad();
            loss.backward();
            opt.step();
        }
        if (t.val.empty()) continue;
        const double va = eval_set(t, t.val, logits, max_batches).second;
        if (va > best_val) {
            best_val = va;
            best_epoch = e + 1;
            best.clear();
            for (auto& [n, v] : lr.state_dict()) best.emplace_back(n, v.detach().clone());
        }
    }
    if (!best.empty()) lr.load_state_dict(best);
    auto [tl, acc] = eval_set(t, t.split.test, logits, max_batches);
    if (!quiet)
        std::fprintf(stderr,
                     "baseline (bag-of-words logistic regression, epoch %lld of %lld by "
                     "validation accuracy %.4f): test loss %.4f, accuracy %.4f\n",
                     static_cast<long long>(best_epoch), static_cast<long long>(epochs), best_val,
                     tl, acc);
    return {acc, best_val};
}

TopicConfig topic_config(const Sets& s) {
    TopicConfig c;
    c.classes = s.integer("classes", c.classes, 2);
    c.min_count = s.integer("min_count", c.min_count);
    c.max_len = s.integer("max_len", c.max_len);
    c.embed = s.integer("embed", c.embed);
    c.hidden = s.integer("hidden", c.hidden);
    c.dropout = s.real("dropout", c.dropout);
    c.test_fraction = s.real("test_fraction", c.test_fraction, 1e-6);
    c.val_fraction = s.real("val_fraction", c.val_fraction, 1e-6);
    if (c.dropout >= 1 || c.test_fraction >= 1 || c.val_fraction >= 1)
        throw UsageError("topic-fortunes: dropout, test_fraction and val_fraction must be below 1");
    return c;
}

const std::set<std::string> kTopicKeys{"classes",       "min_count",       "max_len",
                                       "embed",         "hidden",          "dropout",
                                       "test_fraction", "baseline_epochs", "val_fraction"};

int topic_train(const TrainArgs& a) {
    check_common(a, kTopic, false);
    Sets sets(kTopic, a.sets, kTopicKeys);
    const TopicConfig c = topic_config(sets);
    const int64_t epochs = a.epochs >= 0 ? a.epochs : 10,
                  batch = a.batch_size > 0 ? a.batch_size : 32;
    const int64_t baseline_epochs = sets.integer("baseline_epochs", 20);
    const double lr = a.lr > 0 ? a.lr : 3e-3;
    const uint64_t seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : 0;
    const std::string out = a.out.empty() ? "runs/topic-fortunes" : a.out;
    fs::create_directories(out);
    const std::string ckpt = out + "/checkpoint.safetensors";
    StopOnSigint sig;
    const auto t0 = std::chrono::steady_clock::now();

    TopicData t = topic_data(c, seed);
    const auto C = static_cast<int64_t>(t.d.classes.size());
    manual_seed(seed);
    TopicRNN model(t.vocab.size(), C, c);
    optim::Adam opt(model.parameters(), {.lr = lr});
    std::string classes;
    for (auto& n : t.d.classes) classes += (classes.empty() ? "" : ",") + n;
    std::map<std::string, std::string> meta{
        {"recipe", kTopic},
        {"classes", classes},
        {"vocab_size", std::to_string(t.vocab.size())},
        {"config", nlohmann::json{{"classes", c.classes},
                                  {"min_count", c.min_count},
                                  {"max_len", c.max_len},
                                  {"embed", c.embed},
                                  {"hidden", c.hidden},
                                  {"dropout", c.dropout},
                                  {"test_fraction", c.test_fraction},
                                  {"val_fraction", c.val_fraction},
                                  {"seed", seed}}
                       .dump()}};
    std::vector<train::EpochLog> hist;
    int64_t start_epoch = 0, best_epoch = 0;
    double best_val = -1;
    const std::string best_path = out + "/best.safetensors";  // weights of the best epoch
    Generator g(seed + 3);
    if (a.resume && fs::exists(ckpt)) {
        std::map<std::string, std::string> m;
        try {
            m = train::load_checkpoint(ckpt, model, &opt);
        } catch (const Error& e) {
            throw UsageError(std::string("--resume: ") + e.what());
        }
        if (m["config"] != meta["config"] || m["vocab_size"] != meta["vocab_size"])
            throw UsageError("--resume: " + ckpt + " was written with different settings");
        start_epoch = std::stoll(m["epoch"]);
        for (auto& h : nlohmann::json::parse(m["history"])) {
            train::EpochLog l;
            l.epoch = h["epoch"];
            l.train_loss = h["train_loss"];
            l.train_metric = h["train_acc"];
            l.val_loss = h["val_loss"];
            l.val_metric = h["val_acc"];
            l.seconds = h["seconds"];
            hist.push_back(l);
        }
        g.set_state({std::stoull(m["shuffle_seed"]), std::stoull(m["shuffle_offset"])});
        best_epoch = std::stoll(m["best_epoch"]);
        best_val = std::stod(m["best_val_acc"]);
    }
    if (!a.quiet)
        std::fprintf(stderr,
                     "soma train topic-fortunes: %zu texts in %lld classes (%s), train %zu / "
                     "validation %zu / test %zu, vocabulary %lld words; %s, %lld parameters; "
                     "output in %s/\n",
                     t.d.texts.size(), static_cast<long long>(C), classes.c_str(),
                     t.split.train.size(), t.val.size(), t.split.test.size(),
                     static_cast<long long>(t.vocab.size()), model.to_string().c_str(),
                     static_cast<long long>(model.num_parameters()), out.c_str());
    auto rnn_logits = [&](const std::vector<int64_t>& idx) {
        auto [x, len] = pad_batch(t, idx);
        return model.forward(x, len);
    };
    for (int64_t e = start_epoch; e < epochs; ++e) {
        const auto e0 = std::chrono::steady_clock::now();
        model.train();
        auto order = shuffled(t.split.train, g);
        double tl = 0, tc = 0, tn = 0;
        int64_t k = 0;
        for (size_t s = 0; s < order.size(); s += static_cast<size_t>(batch), ++k) {
            if (a.max_batches > 0 && k >= a.max_batches) break;
            if (g_stop) return interrupted(ckpt);
            std::vector<int64_t> idx(
                order.begin() + static_cast<std::ptrdiff_t>(s),
                order.begin() + static_cast<std::ptrdiff_t>(
                                    std::min(s + static_cast<size_t>(batch), order.size())));
            Tensor y = labels_of(t, idx), logits = rnn_logits(idx);
            Tensor loss = F::cross_entropy(logits, y);
            opt.zero_grad();
            loss.backward();
            optim::clip_grad_norm_(model.parameters(), 5.0);
            opt.step();
            tl += loss.item() * static_cast<double>(idx.size());
            tc += eq(argmax(logits.detach(), 1), y).sum().item();
            tn += static_cast<double>(idx.size());
        }
        model.eval();
        auto [vl, va] =
            eval_set(t, t.val.empty() ? t.split.test : t.val, rnn_logits, a.max_batches);
        if (va > best_val) {
            best_val = va;
            best_epoch = e + 1;
            save_safetensors(best_path, model.state_dict(), meta);
        }
        train::EpochLog l;
        l.epoch = e + 1;
        l.train_loss = tl / tn;
        l.train_metric = tc / tn;
        l.val_loss = vl;
        l.val_metric = va;
        l.lr = lr;
        l.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
        hist.push_back(l);
        nlohmann::json hj = nlohmann::json::array();
        for (auto& h : hist)
            hj.push_back({{"epoch", h.epoch},
                          {"train_loss", h.train_loss},
                          {"train_acc", h.train_metric},
                          {"val_loss", h.val_loss},
                          {"val_acc", h.val_metric},
                          {"seconds", h.seconds}});
        auto m = meta;
        m["epoch"] = std::to_string(e + 1);
        m["history"] = hj.dump();
        auto gs = g.state();
        m["shuffle_seed"] = std::to_string(gs[0]);
        m["shuffle_offset"] = std::to_string(gs[1]);
        m["best_epoch"] = std::to_string(best_epoch);
        m["best_val_acc"] = jnum(best_val);
        train::save_checkpoint(ckpt, model, &opt, nullptr, m);
        train::write_metrics_csv(out + "/metrics.csv", hist, train::Task::classification);
        train::plot_curves_png(
            out + "/curves.png", hist, train::Task::classification,
            "topic-fortunes: bidirectional GRU (validation = held-out training texts)");
        if (!a.quiet)
            std::fprintf(stderr,
                         "epoch %lld/%lld  train loss %.4f acc %.4f  val loss %.4f acc %.4f  "
                         "(%.1f s)\n",
                         static_cast<long long>(e + 1), static_cast<long long>(epochs),
                         l.train_loss, l.train_metric, vl, va, l.seconds);
    }
    // The test split is used once: by the weights of the best validation epoch.
    if (best_epoch > 0) load_weights(best_path, model);
    model.eval();
    auto [test_loss, test_acc] = eval_set(t, t.split.test, rnn_logits, a.max_batches);
    save_safetensors(out + "/model.safetensors", model.state_dict(), meta);
    const auto [base, base_val] = train_baseline(t, seed, baseline_epochs, a.max_batches, a.quiet);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!a.quiet)
        std::fprintf(stderr,
                     "test accuracy %.4f with the weights of epoch %lld (validation %.4f); "
                     "baseline %.4f (validation %.4f)\nwrote %s, %s/model.safetensors, "
                     "%s/metrics.csv, %s/curves.png\n",
                     test_acc, static_cast<long long>(best_epoch), best_val, base, base_val,
                     ckpt.c_str(), out.c_str(), out.c_str(), out.c_str());
    std::printf(
        "{\"recipe\":\"topic-fortunes\",\"test_accuracy\":%s,\"baseline_accuracy\":%s,"
        "\"val_accuracy\":%s,\"baseline_val_accuracy\":%s,\"best_epoch\":%lld,"
        "\"test_loss\":%s,\"classes\":%lld,\"train\":%zu,\"val\":%zu,\"test\":%zu,\"vocab\":%"
        "lld,\"epochs\":%lld,\"seconds\":%s,\"out\":\"%s\"}\n",
        jnum(test_acc).c_str(), jnum(base).c_str(), jnum(best_val).c_str(), jnum(base_val).c_str(),
        static_cast<long long>(best_epoch), jnum(test_loss).c_str(), static_cast<long long>(C),
        t.split.train.size(), t.val.size(), t.split.test.size(),
        static_cast<long long>(t.vocab.size()), static_cast<long long>(epochs), jnum(secs).c_str(),
        out.c_str());
    return 0;
}

int topic_eval(const std::string& path, int threads) {
    if (threads > 0) set_num_threads(threads);
    SafetensorsFile f;
    try {
        f = load_safetensors(path);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    auto cj = nlohmann::json::parse(meta_at(f.metadata, "config", path));
    TopicConfig c;
    c.classes = cj["classes"];
    c.min_count = cj["min_count"];
    c.max_len = cj["max_len"];
    c.embed = cj["embed"];
    c.hidden = cj["hidden"];
    c.dropout = cj["dropout"];
    c.test_fraction = cj["test_fraction"];
    c.val_fraction = cj.value("val_fraction", 0.0);  // older checkpoints: no validation split
    TopicData t = topic_data(c, cj["seed"].get<uint64_t>());
    if (std::to_string(t.vocab.size()) != meta_at(f.metadata, "vocab_size", path))
        throw UsageError(path + ": the fortune files differ from those it was trained on");
    TopicRNN model(t.vocab.size(), static_cast<int64_t>(t.d.classes.size()), c);
    load_weights(path, model);
    model.eval();
    auto [loss, acc] = eval_set(
        t, t.split.test,
        [&](const std::vector<int64_t>& idx) {
            auto [x, len] = pad_batch(t, idx);
            return model.forward(x, len);
        },
        0);
    std::fprintf(stderr, "test loss %.4f, accuracy %.4f\n", loss, acc);
    std::printf("{\"recipe\":\"topic-fortunes\",\"test_accuracy\":%s,\"test_loss\":%s}\n",
                jnum(acc).c_str(), jnum(loss).c_str());
    return 0;
}

}  // namespace

void add_text_workflows(std::vector<Workflow>& out) {
    out.push_back({kCharLM,
                   "character LSTM language model on the King James Bible, trained for --seconds "
                   "(default 600); validation bits per character; soma generate samples text",
                   charlm_train,
                   charlm_generate,
                   {},
                   charlm_eval});
    out.push_back({kTopic,
                   "topic of fortune(6) cookies (8 largest files): Embedding + bidirectional GRU "
                   "vs a bag-of-words logistic regression baseline",
                   topic_train,
                   {},
                   {},
                   topic_eval});
}

}  // namespace soma::app
