// soma — train, evaluate and run models from the command line.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "bench.h"
#include "commands.h"
#include "recipe.h"
#include "workflows.h"

int main(int argc, char** argv) {
    using namespace soma::app;
    CLI::App app{"soma — a C++ deep-learning framework: train, evaluate and run models"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "soma 0.1.0");

    TrainArgs ta;
    auto* train = app.add_subcommand("train", "Train a recipe (built-in name or JSON file)");
    train->add_option("recipe", ta.recipe, "Recipe name (see `soma recipes`) or JSON file")
        ->required();
    train->add_option("--epochs", ta.epochs, "Number of epochs (default: the recipe's)");
    train->add_option("--batch-size", ta.batch_size, "Batch size (default: the recipe's)");
    train->add_option("--lr", ta.lr, "Learning rate (default: the recipe's)");
    train->add_option("--seed", ta.seed, "Random seed (default: the recipe's)");
    train->add_option("--threads", ta.threads, "Threads (default: all cores)");
    train->add_option("--out", ta.out, "Output directory (default: runs/<recipe>)");
    train->add_option("--max-batches", ta.max_batches, "Limit batches per epoch (quick runs)");
    train->add_flag("--resume", ta.resume, "Continue from <out>/checkpoint.safetensors");
    train->add_flag("--quiet", ta.quiet, "No progress display");
    train->add_option("--seconds", ta.seconds, "Training time budget (recipes that use one)");
    train->add_option("--steps", ta.steps,
                      "Environment steps / iterations (recipes that use them)");
    train->add_option("--set", ta.sets, "Recipe-specific override KEY=VALUE (repeatable)");

    std::string ckpt, input;
    int threads = 0, top = 3;
    auto* eval = app.add_subcommand("eval", "Evaluate a checkpoint on its recipe's test set");
    eval->add_option("checkpoint", ckpt, "checkpoint.safetensors or model.safetensors")->required();
    eval->add_option("--threads", threads, "Threads");

    auto* predict =
        app.add_subcommand("predict", "Classify an image (PNG/PGM) or a test-set index");
    predict->add_option("checkpoint", ckpt, "checkpoint.safetensors or model.safetensors")
        ->required();
    predict->add_option("input", input, "Image file, or an index into the test set")->required();
    predict->add_option("--top", top, "Show the top K classes");
    predict->add_option("--threads", threads, "Threads");

    GenerateArgs ga;
    auto* gen =
        app.add_subcommand("generate", "Sample from a generative checkpoint (images or text)");
    gen->add_option("checkpoint", ga.checkpoint, "checkpoint.safetensors of a generative recipe")
        ->required();
    gen->add_option("--n", ga.n, "Images to draw (default: 64)");
    gen->add_option("--out", ga.out, "Output PNG for image models");
    gen->add_option("--prompt", ga.prompt, "Text to start from (language models)");
    gen->add_option("--length", ga.length, "Characters to generate (default: 300)");
    gen->add_option("--temperature", ga.temperature, "Sampling temperature (default: 0.8)");
    gen->add_option("--seed", ga.seed, "Random seed (default: 0)");
    gen->add_option("--threads", ga.threads, "Threads");

    PlayArgs pa;
    auto* play = app.add_subcommand("play", "Run a trained agent in its environment");
    play->add_option("checkpoint", pa.checkpoint, "checkpoint.safetensors of an RL recipe")
        ->required();
    play->add_option("--episodes", pa.episodes, "Evaluation episodes (default: 100)");
    play->add_option("--seed", pa.seed, "Seed of the first episode (default: 0)");
    play->add_option("--render", pa.render, "Write the first episode as an animated GIF");
    play->add_option("--threads", pa.threads, "Threads");

    app.add_subcommand("recipes", "List the built-in recipes");
    std::string what;
    auto* summary =
        app.add_subcommand("summary", "Print a model's layers, output shapes and parameter counts");
    summary->add_option("recipe_or_checkpoint", what, "Recipe name, JSON file or checkpoint")
        ->required();
    app.add_subcommand("info", "Version, build, threads, CPU features, backends");
    BenchArgs ba;
    auto* bench = app.add_subcommand("bench", "Run one benchmark workload, print a JSON line");
    bench->add_option("workload", ba.workload, "Workload (see `soma bench --list`)");
    bench->add_option("--threads", ba.threads, "Threads (default: 1)");
    bench->add_option("--seconds", ba.seconds, "Timed window after warm-up (default: 3)");
    bench->add_flag("--list", ba.list, "List the workloads");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    try {
        if (app.got_subcommand("train")) return cmd_train(ta);
        if (app.got_subcommand("eval")) return cmd_eval(ckpt, threads);
        if (app.got_subcommand("predict")) return cmd_predict(ckpt, input, top, threads);
        if (app.got_subcommand("generate")) return cmd_generate(ga);
        if (app.got_subcommand("play")) return cmd_play(pa);
        if (app.got_subcommand("recipes")) return cmd_recipes();
        if (app.got_subcommand("summary")) return cmd_summary(what);
        if (app.got_subcommand("info")) return cmd_info();
        if (app.got_subcommand("bench")) return cmd_bench(ba);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "soma: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "soma: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
