// A convolutional autoencoder on Fashion-MNIST (code of 16 numbers) trained with
// soma::train::fit (MSE, targets = inputs); reconstruction MSE on the test set; a PNG of test
// inputs (odd rows) above their reconstructions (even rows); then k-means (k = 10) on the test
// codes and on the raw test pixels, scored by clustering accuracy and NMI.
//
//   autoencoder_fashion [--epochs 1] [--max-batches 0] [--code 16] [--out runs/autoencoder-fashion]
//                       [--threads N] [--no-cluster]
// The last line is JSON with test_mse and (unless --no-cluster) code/pixel accuracy and NMI.
#include <soma/gen.h>
#include <soma/soma.h>
#include <soma/train.h>

#include <cstdio>
#include <string>

namespace {
struct Args {
    int64_t epochs = 1, max_batches = 0, threads = 0, code = 16;
    bool cluster = true;
    std::string out = "runs/autoencoder-fashion";
};
Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(k + " needs a value");
            return argv[++i];
        };
        if (k == "--epochs")
            a.epochs = std::stoll(next());
        else if (k == "--max-batches")
            a.max_batches = std::stoll(next());
        else if (k == "--threads")
            a.threads = std::stoll(next());
        else if (k == "--code")
            a.code = std::stoll(next());
        else if (k == "--out")
            a.out = next();
        else if (k == "--no-cluster")
            a.cluster = false;
        else
            throw std::runtime_error("unknown option " + k);
    }
    return a;
}
}  // namespace

int main(int argc, char** argv) try {
    Args a = parse(argc, argv);
    if (a.threads > 0) soma::set_num_threads(static_cast<int>(a.threads));
    auto train_raw = soma::data::fashion_mnist("", true);
    auto test_raw = soma::data::fashion_mnist("", false);
    soma::data::TensorDataset train(train_raw.inputs(), train_raw.inputs());
    soma::data::TensorDataset test(test_raw.inputs(), test_raw.inputs());
    soma::data::DataLoader train_loader(train, {.batch_size = 128, .shuffle = true, .seed = 0});
    soma::data::DataLoader test_loader(test, {.batch_size = 500});

    soma::manual_seed(0);
    soma::gen::ConvAutoencoder ae({.code = a.code});
    soma::optim::Adam opt(ae.parameters(), {.lr = 1e-3});
    soma::nn::MSELoss mse;
    soma::train::FitOptions fo{.epochs = a.epochs,
                               .task = soma::train::Task::regression,
                               .out_dir = a.out,
                               .max_batches_per_epoch = a.max_batches};
    fo.metadata = {{"recipe", "autoencoder-fashion"}};
    soma::train::fit(ae, mse, opt, train_loader, nullptr, fo);
    double test_mse = soma::gen::reconstruction_mse(ae, test_loader);

    // 4 rows of 8 test inputs, each followed by a row of their reconstructions.
    ae.eval();
    soma::Tensor rows;
    {
        soma::NoGradGuard ng;
        std::vector<soma::Tensor> parts;
        for (int64_t r = 0; r < 4; ++r) {
            soma::Tensor x = test_raw.inputs().narrow(0, r * 8, 8);
            parts.push_back(x);
            parts.push_back(ae(x));
        }
        rows = soma::cat(parts, 0);
    }
    std::string png = a.out + "/reconstructions.png";
    soma::gen::save_image_grid(png, rows, {.nrow = 8});

    std::printf("{\"test_mse\": %.5f, \"reconstructions\": \"%s\"", test_mse, png.c_str());
    if (a.cluster) {
        soma::Tensor codes;
        {
            soma::NoGradGuard ng;
            std::vector<soma::Tensor> parts;
            for (const auto& b : test_loader) parts.push_back(ae.encode(b.input));
            codes = soma::cat(parts, 0);
        }
        const soma::Tensor& labels = test_raw.targets();
        soma::Tensor pixels = test_raw.inputs().reshape({test_raw.size(), -1});
        auto kc = soma::gen::kmeans(codes, {.k = 10, .seed = 0, .n_init = 3});
        auto kp = soma::gen::kmeans(pixels, {.k = 10, .seed = 0, .n_init = 3});
        std::printf(
            ", \"code_accuracy\": %.4f, \"code_nmi\": %.4f, \"pixel_accuracy\": %.4f, "
            "\"pixel_nmi\": %.4f",
            soma::gen::clustering_accuracy(labels, kc.labels),
            soma::gen::normalized_mutual_info(labels, kc.labels),
            soma::gen::clustering_accuracy(labels, kp.labels),
            soma::gen::normalized_mutual_info(labels, kp.labels));
    }
    std::printf("}\n");
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "autoencoder_fashion: %s\n", e.what());
    return 1;
}
