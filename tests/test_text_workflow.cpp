// The text CLI workflows (apps/soma/wf_text.cpp) run in-process on a few batches: the JSON
// line's keys, the files written, --resume, `soma generate` on the checkpoint, usage errors.
// Needs the soma_app library linked into soma_tests, and the data (`bible`, the fortunes);
// skipped otherwise.
#include <gtest/gtest.h>

#if __has_include("workflows.h")
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "recipe.h"
#include "soma/soma.h"
#include "soma/text.h"
#include "workflows.h"

using namespace soma;
namespace fs = std::filesystem;

namespace {

fs::path wf_dir(const std::string& name) {
    fs::path p = fs::temp_directory_path() / ("soma_test_text_wf_" + name);
    fs::remove_all(p);
    return p;
}

nlohmann::json last_json(std::string s) {
    while (!s.empty() && s.back() == '\n') s.pop_back();
    auto nl = s.rfind('\n');
    return nlohmann::json::parse(nl == std::string::npos ? s : s.substr(nl + 1));
}

nlohmann::json run_train(app::TrainArgs a) {
    const app::Workflow* w = app::find_workflow(a.recipe);
    EXPECT_NE(w, nullptr) << a.recipe;
    if (!w) return {};
    a.quiet = true;
    ::testing::internal::CaptureStdout();
    int rc = w->train(a);
    std::string s = ::testing::internal::GetCapturedStdout();
    EXPECT_EQ(rc, 0);
    return last_json(s);
}

bool have_bible() {
    try {
        return text::run_command("bible gen1:1 2>/dev/null").size() > 10;
    } catch (const Error&) {
        return false;
    }
}

}  // namespace

TEST(TextWorkflow, RegisteredAndUsageErrors) {
    const app::Workflow* lm = app::find_workflow("charlm-kjv");
    const app::Workflow* tp = app::find_workflow("topic-fortunes");
    ASSERT_NE(lm, nullptr);
    ASSERT_NE(tp, nullptr);
    EXPECT_TRUE(lm->generate);
    EXPECT_TRUE(lm->eval);
    EXPECT_TRUE(tp->eval);
    app::TrainArgs a;
    a.recipe = "charlm-kjv";
    a.sets = {"no_such_key=1"};
    EXPECT_THROW(lm->train(a), app::UsageError);
    a.sets = {"hidden=-3"};
    EXPECT_THROW(lm->train(a), app::UsageError);
    a.sets = {};
    a.epochs = 3;  // trains by the clock
    EXPECT_THROW(lm->train(a), app::UsageError);
    app::TrainArgs b;
    b.recipe = "topic-fortunes";
    b.seconds = 10;
    EXPECT_THROW(tp->train(b), app::UsageError);
}

TEST(TextWorkflow, CharLmQuickRunResumeAndGenerate) {
    if (!have_bible()) GTEST_SKIP() << "`bible` (bible-kjv) not installed";
    fs::path out = wf_dir("lm");
    app::TrainArgs a;
    a.recipe = "charlm-kjv";
    a.max_batches = 2;
    a.batch_size = 4;
    a.out = out.string();
    a.sets = {"hidden=8", "embed=4", "bptt=16", "val_fraction=0.0005", "eval_chars=500"};
    auto j = run_train(a);
    EXPECT_EQ(j["steps"], 2);
    EXPECT_GT(j["val_bpc"].get<double>(), 0.5);
    for (auto f : {"checkpoint.safetensors", "model.safetensors", "metrics.csv", "curves.png"})
        EXPECT_TRUE(fs::exists(out / f)) << f;
    a.resume = true;
    auto j2 = run_train(a);
    EXPECT_EQ(j2["steps"], 4);  // two more on top of the checkpoint's two
    app::GenerateArgs g;
    g.checkpoint = (out / "model.safetensors").string();
    g.prompt = "In the";
    g.length = 20;
    ::testing::internal::CaptureStdout();
    EXPECT_EQ(app::cmd_generate(g), 0);
    std::string s = ::testing::internal::GetCapturedStdout();
    EXPECT_EQ(s.rfind("In the", 0), 0u) << s;
    EXPECT_EQ(last_json(s)["recipe"], "charlm-kjv");
    g.prompt = "\x01";
    EXPECT_THROW(app::cmd_generate(g), app::UsageError);
    fs::remove_all(out);
}

TEST(TextWorkflow, TopicQuickRunAndResume) {
    if (!fs::exists("/usr/share/games/fortunes/people")) GTEST_SKIP() << "fortunes not installed";
    fs::path out = wf_dir("topic");
    app::TrainArgs a;
    a.recipe = "topic-fortunes";
    a.epochs = 1;
    a.max_batches = 2;
    a.out = out.string();
    a.sets = {"hidden=8", "embed=8", "baseline_epochs=1", "max_len=20"};
    auto j = run_train(a);
    EXPECT_GE(j["test_accuracy"].get<double>(), 0.0);
    EXPECT_GE(j["baseline_accuracy"].get<double>(), 0.0);
    EXPECT_EQ(j["classes"], 8);
    // Model selection on a validation split carved from the training texts, never the test set.
    EXPECT_GT(j["val"].get<int64_t>(), 0);
    EXPECT_EQ(j["best_epoch"], 1);
    EXPECT_GE(j["val_accuracy"].get<double>(), 0.0);
    EXPECT_TRUE(fs::exists(out / "best.safetensors"));
    a.epochs = 2;
    a.resume = true;
    auto j2 = run_train(a);
    EXPECT_GE(j2["best_epoch"].get<int64_t>(), 1);
    EXPECT_LE(j2["best_epoch"].get<int64_t>(), 2);
    EXPECT_GE(j2["val_accuracy"].get<double>(), j["val_accuracy"].get<double>());
    std::ifstream csv(out / "metrics.csv");
    int lines = 0;
    for (std::string l; std::getline(csv, l);) ++lines;
    EXPECT_EQ(lines, 3);  // header + 2 epochs
    fs::remove_all(out);
}
#endif
