// The generative CLI workflows (apps/soma/wf_gen.cpp) run in-process on a few batches: files
// written, the JSON line's keys, `soma generate` on the checkpoints. Needs the soma_app library
// (linked into soma_tests) and Fashion-MNIST; skipped otherwise.
#include <gtest/gtest.h>

#if __has_include("workflows.h")
#include <filesystem>
#include <nlohmann/json.hpp>

#include "recipe.h"
#include "soma/image.h"
#include "soma/io.h"
#include "soma/soma.h"
#include "workflows.h"

using namespace soma;
namespace fs = std::filesystem;

namespace {

fs::path wf_dir(const std::string& name) {
    fs::path p = fs::temp_directory_path() / ("soma_test_gen_wf_" + name);
    fs::remove_all(p);
    return p;
}

bool have_fashion() {
    return fs::exists(fs::path(data::fashion_mnist_dir()) / "t10k-labels-idx1-ubyte") ||
           fs::exists(fs::path(data::fashion_mnist_dir()) / "t10k-labels-idx1-ubyte.gz");
}

// Runs a workflow's train with a quick configuration; returns the parsed last stdout line.
nlohmann::json run_train(const std::string& name, const fs::path& out,
                         std::vector<std::string> sets) {
    const app::Workflow* w = app::find_workflow(name);
    EXPECT_NE(w, nullptr) << name;
    if (!w) return {};
    app::TrainArgs a;
    a.recipe = name;
    a.epochs = 1;
    a.batch_size = 16;
    a.max_batches = 2;
    a.quiet = true;
    a.out = out.string();
    a.sets = std::move(sets);
    ::testing::internal::CaptureStdout();
    int rc = w->train(a);
    std::string s = ::testing::internal::GetCapturedStdout();
    EXPECT_EQ(rc, 0);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    EXPECT_EQ(s.find('\n'), std::string::npos) << "one JSON line expected: " << s;
    return nlohmann::json::parse(s);
}

// An untrained cnn-fashion classifier saved as `soma train` saves model.safetensors.
std::string random_classifier(const fs::path& dir) {
    app::Recipe r = app::load_recipe("cnn-fashion");
    auto m = app::build_model(r);
    fs::create_directories(dir);
    std::string p = (dir / "model.safetensors").string();
    save_safetensors(p, m->state_dict(), {{"recipe", r.name}, {"recipe_json", r.spec.dump()}});
    return p;
}

}  // namespace

TEST(GenWorkflow, RegisteredWithTrainGenerateEval) {
    for (std::string n :
         {"dcgan-fashion", "vae-fashion", "autoencoder-fashion", "cluster-fashion"}) {
        const app::Workflow* w = app::find_workflow(n);
        ASSERT_NE(w, nullptr) << n;
        EXPECT_TRUE(w->train) << n;
    }
    EXPECT_TRUE(app::find_workflow("dcgan-fashion")->generate);
    EXPECT_TRUE(app::find_workflow("vae-fashion")->generate);
    EXPECT_TRUE(app::find_workflow("autoencoder-fashion")->eval);
    app::TrainArgs a;
    a.recipe = "vae-fashion";
    a.sets = {"no_such_key=1"};
    EXPECT_THROW(app::find_workflow("vae-fashion")->train(a), app::UsageError);
    a.sets = {"classifier=/nonexistent/model.safetensors"};
    EXPECT_THROW(app::find_workflow("vae-fashion")->train(a), app::UsageError);
}

TEST(GenWorkflow, QuickRunsWriteFilesAndJson) {
    if (!have_fashion()) GTEST_SKIP() << "Fashion-MNIST not found";
    fs::path root = wf_dir("quick");
    std::string clf = random_classifier(root / "clf");
    std::string cset = "classifier=" + clf;

    auto gan = run_train("dcgan-fashion", root / "gan", {cset, "latent=8"});
    for (const char* k : {"fid", "fid_real_floor", "fid_noise_ceiling", "g_loss", "d_loss"})
        EXPECT_TRUE(gan.contains(k)) << k << " in " << gan.dump();
    EXPECT_GE(gan["fid_noise_ceiling"].get<double>(), 0.0);
    for (const char* f : {"checkpoint.safetensors", "metrics.csv", "samples_epoch_1.png",
                          "samples.png", "curves.png"})
        EXPECT_TRUE(fs::exists(root / "gan" / f)) << f;
    EXPECT_EQ(app::workflow_of_checkpoint((root / "gan" / "checkpoint.safetensors").string()),
              app::find_workflow("dcgan-fashion"));

    auto vae = run_train("vae-fashion", root / "vae", {cset, "code=4"});
    for (const char* k : {"fid", "fid_real_floor", "fid_noise_ceiling", "test_mse"})
        EXPECT_TRUE(vae.contains(k)) << k << " in " << vae.dump();
    for (const char* f : {"checkpoint.safetensors", "metrics.csv", "samples.png",
                          "interpolation.png", "curves.png"})
        EXPECT_TRUE(fs::exists(root / "vae" / f)) << f;

    // generate: a grid PNG from both generative checkpoints.
    for (const char* which : {"gan", "vae"}) {
        app::GenerateArgs g;
        g.checkpoint = (root / which / "checkpoint.safetensors").string();
        g.n = 10;
        g.out = (root / (std::string(which) + "_grid.png")).string();
        ::testing::internal::CaptureStdout();
        EXPECT_EQ(app::cmd_generate(g), 0);
        ::testing::internal::GetCapturedStdout();
        ASSERT_TRUE(fs::exists(g.out)) << which;
        Tensor img = read_image(g.out);
        EXPECT_EQ(img.size(1), 3 * 30 + 2);  // ceil(sqrt(10)) = 4 per row: 3 rows of 28 + 2
        EXPECT_EQ(img.size(2), 4 * 30 + 2);
    }

    auto ae = run_train("autoencoder-fashion", root / "ae", {"code=4"});
    ASSERT_TRUE(ae.contains("test_mse"));
    EXPECT_GT(ae["test_mse"].get<double>(), 0.0);
    EXPECT_TRUE(fs::exists(root / "ae" / "reconstructions.png"));
    EXPECT_TRUE(fs::exists(root / "ae" / "metrics.csv"));

    auto cl =
        run_train("cluster-fashion", root / "cluster",
                  {"autoencoder=" + (root / "ae" / "checkpoint.safetensors").string(), "n_init=1"});
    for (const char* k : {"code_accuracy", "pixel_accuracy", "code_nmi", "pixel_nmi"}) {
        ASSERT_TRUE(cl.contains(k)) << k << " in " << cl.dump();
        double v = cl[k].get<double>();
        EXPECT_GE(v, 0.0);
        EXPECT_LE(v, 1.0);
    }
    EXPECT_TRUE(fs::exists(root / "cluster" / "codes_pca.png"));
    fs::remove_all(root);
}
#endif
