// Character-level LSTM language model on the King James Bible.
//
//     charlm_kjv [minutes = 10] [threads = 2] [hidden = 256]
//
// Needs `bible` (Debian: apt-get install bible-kjv bible-kjv-text). Trains for the time budget
// with truncated BPTT, then prints the validation bits per character (last 5% of the text) and
// 300 characters sampled from "In the beginning" at temperature 0.8.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "soma/parallel.h"
#include "soma/text.h"

int main(int argc, char** argv) {
    try {
        const double minutes = argc > 1 ? std::atof(argv[1]) : 10.0;
        soma::set_num_threads(argc > 2 ? std::atoi(argv[2]) : 2);
        namespace tx = soma::text;
        const std::string text = tx::load_kjv();
        const auto vocab = tx::CharVocab::from_text(text);
        const auto split = tx::split_tail(vocab.encode(text), 0.05);
        std::printf("text: %zu characters, vocabulary %lld, train %zu, val %zu\n", text.size(),
                    static_cast<long long>(vocab.size()), split.train.size(), split.val.size());
        tx::CharLM model({.vocab = vocab.size(), .hidden = argc > 3 ? std::atoi(argv[3]) : 256});
        std::printf("%s\nparameters: %lld\n", model.to_string().c_str(),
                    static_cast<long long>(model.num_parameters()));
        tx::CharLMTrainOptions opt{
            .time_budget_s = minutes * 60, .on_progress = [](const tx::CharLMProgress& p) {
                std::printf(
                    "%6.0fs step %6lld epoch %lld train bpc %.3f "
                    "%.0f tokens/s\n",
                    p.seconds, static_cast<long long>(p.step), static_cast<long long>(p.epoch),
                    p.train_bpc, p.tokens_per_s);
                std::fflush(stdout);
            }};
        const tx::CharLMReport r = tx::train_charlm(model, split, opt);
        std::printf("trained %.0f s, %lld steps, %lld tokens, %.0f tokens/s\n", r.seconds,
                    static_cast<long long>(r.steps), static_cast<long long>(r.tokens),
                    r.tokens_per_s);
        std::printf("val_bpc %.4f (train %.4f)\n", r.val_bpc, r.train_bpc);
        std::printf("sample:\n%s\n", tx::sample(model, vocab, "In the beginning",
                                                {.length = 300, .temperature = 0.8})
                                         .c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "charlm_kjv: %s\n", e.what());
        return 1;
    }
}
