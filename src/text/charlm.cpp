// Text data and the character-level LSTM language model.
//
// Batching follows PyTorch's word_language_model example: the stream is laid out as B parallel
// rows read top to bottom, so consecutive batches continue each row and the LSTM state carries
// over (truncated BPTT: the state is detached between batches, gradients stop at the chunk).
// Bits per character = cross-entropy in nats / ln 2.
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "soma/autograd.h"
#include "soma/nn/functional.h"
#include "soma/ops.h"
#include "soma/optim.h"
#include "soma/random.h"
#include "soma/text.h"

namespace soma::text {

std::string run_command(const std::string& command) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    SOMA_CHECK(pipe != nullptr, "run_command: cannot run \"", command, "\".");
    std::string out;
    std::array<char, 65536> buf{};
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
    int status = pclose(pipe.release());
    SOMA_CHECK(status == 0, "run_command: \"", command, "\" failed with status ", status, ".");
    return out;
}

std::string load_kjv() {
    std::string text;
    try {
        text = run_command("bible gen1:1-rev22:21 2>/dev/null");
    } catch (const Error&) {
        text.clear();
    }
    SOMA_CHECK(text.size() > 1000000, "load_kjv: `bible gen1:1-rev22:21` gave ", text.size(),
               " bytes, expected the whole Bible (about 4.3 MB). Install it with: apt-get "
               "install bible-kjv bible-kjv-text");
    return text;
}

// ---- vocabulary and batches --------------------------------------------------------------------

CharVocab::CharVocab(std::string chars) : chars_(std::move(chars)) {
    for (size_t i = 0; i < chars_.size(); ++i) {
        auto& slot = index_[static_cast<unsigned char>(chars_[i])];
        SOMA_CHECK_VALUE(slot < 0, "CharVocab: repeated character ", static_cast<int>(chars_[i]),
                         " at position ", i, ".");
        slot = static_cast<int64_t>(i);
    }
}

CharVocab CharVocab::from_text(std::string_view text) {
    std::array<bool, 256> seen{};
    for (char c : text) seen[static_cast<unsigned char>(c)] = true;
    std::string chars;
    for (int c = 0; c < 256; ++c)
        if (seen[static_cast<size_t>(c)]) chars.push_back(static_cast<char>(c));
    return CharVocab(chars);
}

int64_t CharVocab::id(char c) const {
    int64_t i = index_[static_cast<unsigned char>(c)];
    SOMA_CHECK_VALUE(i >= 0, "CharVocab: character ",
                     static_cast<int>(static_cast<unsigned char>(c)), " ('", std::string(1, c),
                     "') is not in the vocabulary of ", size(), " characters.");
    return i;
}

char CharVocab::chr(int64_t i) const {
    SOMA_CHECK_INDEX(i >= 0 && i < size(), "CharVocab: id ", i, " out of range [0, ", size(), ").");
    return chars_[static_cast<size_t>(i)];
}

std::vector<int64_t> CharVocab::encode(std::string_view s) const {
    std::vector<int64_t> ids;
    ids.reserve(s.size());
    for (char c : s) ids.push_back(id(c));
    return ids;
}

std::string CharVocab::decode(const std::vector<int64_t>& ids) const {
    std::string s;
    s.reserve(ids.size());
    for (int64_t i : ids) s.push_back(chr(i));
    return s;
}

TextSplit split_tail(const std::vector<int64_t>& ids, double val_fraction) {
    SOMA_CHECK_VALUE(val_fraction > 0 && val_fraction < 1,
                     "split_tail: val_fraction must be in (0, 1): got ", val_fraction, ".");
    auto n_val = static_cast<size_t>(static_cast<double>(ids.size()) * val_fraction);
    auto cut = ids.begin() + static_cast<std::ptrdiff_t>(ids.size() - n_val);
    return {{ids.begin(), cut}, {cut, ids.end()}};
}

BpttBatches::BpttBatches(const std::vector<int64_t>& ids, int64_t batch_size, int64_t bptt)
    : batch_size_(batch_size), bptt_(bptt) {
    SOMA_CHECK_VALUE(batch_size > 0 && bptt > 0,
                     "BpttBatches: batch_size and bptt must be positive: got ", batch_size, " and ",
                     bptt, ".");
    const auto n = static_cast<int64_t>(ids.size());
    rows_ = n > 0 ? (n - 1) / batch_size : 0;  // every row needs one more token for its target
    SOMA_CHECK_VALUE(rows_ >= 1, "BpttBatches: ", n, " tokens are too few for batch_size ",
                     batch_size, ".");
    // Row b of the stream starts at b * rows_; store it as column b (time-major batches).
    data_.resize(static_cast<size_t>((rows_ + 1) * batch_size));
    for (int64_t b = 0; b < batch_size; ++b)
        for (int64_t t = 0; t <= rows_; ++t)
            data_[static_cast<size_t>(t * batch_size + b)] =
                ids[static_cast<size_t>(std::min(b * rows_ + t, n - 1))];
    num_batches_ = (rows_ + bptt - 1) / bptt;
}

BpttBatches::Batch BpttBatches::operator[](int64_t i) const {
    SOMA_CHECK_INDEX(i >= 0 && i < num_batches_, "BpttBatches: batch ", i, " out of range [0, ",
                     num_batches_, ").");
    const int64_t t0 = i * bptt_, T = std::min(bptt_, rows_ - t0), B = batch_size_;
    auto at = data_.begin() + static_cast<std::ptrdiff_t>(t0 * B);
    std::vector<int64_t> x(at, at + T * B), y(at + B, at + B + T * B);
    return {from_vector<int64_t>(x, {T, B}), from_vector<int64_t>(y, {T, B})};
}

// ---- model -------------------------------------------------------------------------------------

CharLM::CharLM(CharLMOptions o)
    : options(o),
      embed({.num = o.vocab, .dim = o.embed}),
      lstm({.input_size = o.embed,
            .hidden_size = o.hidden,
            .num_layers = o.layers,
            .dropout = o.dropout}),
      head({.in = o.hidden, .out = o.vocab}) {
    register_module("embed", embed);
    register_module("lstm", lstm);
    register_module("head", head);
}

CharLM::Output CharLM::forward(const Tensor& x, const nn::RNNState& state) {
    SOMA_CHECK_SHAPE(x.dim() == 2, "CharLM: expected token ids [T, B]: got ", x.shape(), ".");
    nn::RNNOutput r = lstm(embed(x), state);
    return {head(r.output), r.state()};
}

namespace {
constexpr double kLn2 = 0.69314718055994530942;

// Mean cross-entropy (nats) of a batch and the new state.
std::pair<Tensor, nn::RNNState> batch_loss(CharLM& m, const BpttBatches::Batch& b,
                                           const nn::RNNState& s) {
    CharLM::Output out = m.forward(b.x, s);
    const int64_t V = m.options.vocab;
    Tensor loss = nn::functional::cross_entropy(out.logits.reshape({-1, V}), b.y.reshape({-1}));
    return {loss, out.state};
}
}  // namespace

double evaluate_bpc(CharLM& model, const std::vector<int64_t>& ids, int64_t batch_size,
                    int64_t bptt) {
    NoGradGuard ng;
    const bool was_training = model.is_training();
    model.eval();
    BpttBatches batches(ids, batch_size, bptt);
    double nats = 0;
    int64_t count = 0;
    nn::RNNState s;
    for (int64_t i = 0; i < batches.size(); ++i) {
        auto b = batches[i];
        auto [loss, ns] = batch_loss(model, b, s);
        nats += loss.item() * static_cast<double>(b.y.numel());
        count += b.y.numel();
        s = ns;
    }
    model.train(was_training);
    return nats / static_cast<double>(count) / kLn2;
}

std::string sample(CharLM& model, const CharVocab& vocab, const std::string& prompt,
                   SampleOptions o) {
    SOMA_CHECK_VALUE(o.temperature > 0, "sample: temperature must be positive: got ", o.temperature,
                     ".");
    SOMA_CHECK_VALUE(!prompt.empty(), "sample: the prompt is empty.");
    NoGradGuard ng;
    const bool was_training = model.is_training();
    model.eval();
    Generator gen(o.seed);
    std::vector<int64_t> ids = vocab.encode(prompt);
    const DType dt = model.head.weight.dtype();
    Tensor x = from_vector<int64_t>(ids, {static_cast<int64_t>(ids.size()), 1});
    CharLM::Output out = model.forward(x, {});
    std::string text = prompt;
    for (int64_t k = 0; k < o.length; ++k) {
        Tensor last = out.logits[out.logits.size(0) - 1][0].to(DType::float64) / o.temperature;
        std::vector<double> p = softmax(last, 0).to_vector<double>();
        double u = gen.next_double(), acc = 0;
        int64_t next = static_cast<int64_t>(p.size()) - 1;
        for (size_t i = 0; i < p.size(); ++i) {
            acc += p[i];
            if (u < acc) {
                next = static_cast<int64_t>(i);
                break;
            }
        }
        text.push_back(vocab.chr(next));
        out = model.forward(from_vector<int64_t>({next}, {1, 1}), out.state);
    }
    (void)dt;
    model.train(was_training);
    return text;
}

CharLMReport train_charlm(CharLM& model, const TextSplit& split, const CharLMTrainOptions& o) {
    using Clock = std::chrono::steady_clock;
    manual_seed(o.seed);
    BpttBatches batches(split.train, o.batch_size, o.bptt);
    auto params = model.parameters();
    std::unique_ptr<optim::Adam> own;
    optim::Optimizer* opt = o.optimizer;
    if (!opt) {
        own = std::make_unique<optim::Adam>(params, optim::AdamOptions{.lr = o.lr});
        opt = own.get();
    }
    model.train();
    CharLMReport rep;
    rep.steps = o.start_step;
    rep.tokens = o.start_tokens;
    // The training clock: time spent in the progress callback (evaluation, checkpoints) is not
    // counted against the budget.
    const auto start = Clock::now();
    double paused = 0;
    auto elapsed = [&] {
        return o.start_seconds + std::chrono::duration<double>(Clock::now() - start).count() -
               paused;
    };
    double next_log = elapsed() + o.log_every_s, run_nats = 0;
    int64_t run_tokens = 0, epoch = o.start_step / batches.size(),
            first = o.start_step % batches.size();
    bool done = (o.max_steps >= 0 && rep.steps >= o.max_steps) || elapsed() >= o.time_budget_s;
    while (!done) {
        nn::RNNState s;  // the state restarts with every pass over the text
        for (int64_t i = first; i < batches.size(); ++i) {
            auto b = batches[i];
            auto [loss, ns] = batch_loss(model, b, s);
            s = ns.detach();
            opt->zero_grad();
            loss.backward();
            if (o.clip > 0) optim::clip_grad_norm_(params, o.clip);
            opt->step();
            const double l = loss.item();
            rep.steps += 1;
            rep.tokens += b.y.numel();
            run_nats += l * static_cast<double>(b.y.numel());
            run_tokens += b.y.numel();
            const double t = elapsed();
            const bool last =
                t >= o.time_budget_s || (o.max_steps >= 0 && rep.steps >= o.max_steps);
            if (run_tokens > 0 && (t >= next_log || last)) {
                rep.train_bpc = run_nats / static_cast<double>(run_tokens) / kLn2;
                if (o.on_progress) {
                    const auto c0 = Clock::now();
                    o.on_progress({.step = rep.steps,
                                   .tokens = rep.tokens,
                                   .epoch = rep.steps / batches.size(),
                                   .seconds = t,
                                   .train_bpc = rep.train_bpc,
                                   .tokens_per_s = static_cast<double>(rep.tokens) / t});
                    paused += std::chrono::duration<double>(Clock::now() - c0).count();
                }
                next_log = t + o.log_every_s;
                run_nats = 0;
                run_tokens = 0;
            }
            if (last) {
                done = true;
                break;
            }
        }
        first = 0;
        ++epoch;
    }
    rep.seconds = elapsed();
    rep.tokens_per_s = rep.seconds > 0 ? static_cast<double>(rep.tokens) / rep.seconds : 0;
    rep.val_bpc = o.evaluate ? evaluate_bpc(model, split.val) : NAN;
    return rep;
}

}  // namespace soma::text
