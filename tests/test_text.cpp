// Word-level text (soma/text.h): tokenizer, word vocabulary, fortune-file parsing on a temporary
// directory, the stratified split, and resuming the character-LM training loop.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "soma/soma.h"
#include "soma/text.h"

namespace soma {
namespace {

using ::testing::ElementsAre;

TEST(TextWords, TokenizerLowercasesAndSplits) {
    EXPECT_THAT(text::tokenize_words("Don't PANIC, 42!  it's   o'clock--'quoted' end'"),
                ElementsAre("don't", "panic", "42", "it's", "o'clock", "quoted", "end"));
    EXPECT_TRUE(text::tokenize_words(" \n\t%!").empty());
    EXPECT_THAT(text::tokenize_words("a\nB"), ElementsAre("a", "b"));
}

TEST(TextWords, VocabularyFromTrainingTexts) {
    std::vector<std::vector<std::string>> docs{
        {"the", "cat", "sat"}, {"the", "mat", "cat"}, {"the", "dog"}};
    auto v = text::WordVocab::build(docs, 2);
    EXPECT_THAT(v.words(), ElementsAre("<pad>", "<unk>", "the", "cat"));
    EXPECT_EQ(v.id("the"), 2);
    EXPECT_EQ(v.id("dog"), text::WordVocab::unk);
    EXPECT_THAT(v.encode({"cat", "zebra", "the"}), ElementsAre(3, 1, 2));
    auto all = text::WordVocab::build(docs, 1, 4);  // capped: the two most frequent words
    EXPECT_EQ(all.size(), 4);
    EXPECT_EQ(all.word(3), "cat");
    EXPECT_THROW(all.word(9), IndexError);
    EXPECT_THROW(text::WordVocab({"a", "b"}), ValueError);
}

TEST(TextWords, SplitFortunes) {
    auto f = text::split_fortunes("First one.\n%\n  Second\nline two\n%\n%\n\nThird %\n");
    EXPECT_THAT(f, ElementsAre("First one.", "Second\nline two", "Third %"));
    EXPECT_TRUE(text::split_fortunes("%\n%\n").empty());
}

TEST(TextWords, LoadFortunesFromADirectory) {
    namespace fs = std::filesystem;
    const fs::path dir =
        fs::temp_directory_path() / ("soma_fortunes_" + std::to_string(::getpid()));
    fs::create_directories(dir / "off");
    auto write = [&](const std::string& name, int n) {
        std::ofstream f(dir / name);
        for (int i = 0; i < n; ++i) f << name << " text " << i << "\n%\n";
    };
    write("big", 6);
    write("mid", 4);
    write("small", 2);
    write("big.dat", 50);  // index files and links are skipped
    write("rude-o", 40);
    write("off/rude", 40);
    fs::create_symlink(dir / "big", dir / "big.u8");
    auto d = text::load_fortunes(dir.string(), 2);
    EXPECT_THAT(d.classes, ElementsAre("big", "mid"));
    ASSERT_EQ(d.texts.size(), 10u);
    EXPECT_EQ(d.texts[0], "big text 0");
    EXPECT_EQ(d.labels[9], 1);
    EXPECT_THROW(text::load_fortunes(dir.string(), 4), Error);
    auto s = text::stratified_split(d, 0.5, 7);
    EXPECT_EQ(s.train.size() + s.test.size(), 10u);
    int test_big = 0;
    for (int64_t i : s.test) test_big += d.labels[static_cast<size_t>(i)] == 0;
    EXPECT_EQ(test_big, 3);  // half of each class
    auto s2 = text::stratified_split(d, 0.5, 7);
    EXPECT_EQ(s.test, s2.test);
    fs::remove_all(dir);
}

TEST(TextCharLM, ResumeContinuesTheStepCount) {
    std::string corpus;
    for (int i = 0; i < 40; ++i) corpus += "abc abd abe. ";
    auto v = text::CharVocab::from_text(corpus);
    auto sp = text::split_tail(v.encode(corpus), 0.1);
    manual_seed(2);
    text::CharLM m({.vocab = v.size(), .embed = 4, .hidden = 8});
    optim::Adam opt(m.parameters(), {.lr = 1e-2});
    int calls = 0;
    text::CharLMTrainOptions o{.batch_size = 4, .bptt = 8, .max_steps = 5, .log_every_s = 1e9};
    o.optimizer = &opt;
    o.on_progress = [&](const text::CharLMProgress& p) {
        ++calls;
        EXPECT_EQ(p.step, 5);
    };
    auto r1 = text::train_charlm(m, sp, o);
    EXPECT_EQ(r1.steps, 5);
    EXPECT_EQ(calls, 1);  // the last step always reports
    o.start_step = r1.steps;
    o.start_tokens = r1.tokens;
    o.start_seconds = r1.seconds;
    o.max_steps = 9;
    o.on_progress = {};
    o.evaluate = false;
    auto r2 = text::train_charlm(m, sp, o);
    EXPECT_EQ(r2.steps, 9);
    EXPECT_EQ(r2.tokens, r1.tokens * 9 / 5);
    EXPECT_GE(r2.seconds, r1.seconds);
    EXPECT_TRUE(std::isnan(r2.val_bpc));
}

}  // namespace
}  // namespace soma
