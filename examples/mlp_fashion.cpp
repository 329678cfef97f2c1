// The README's 20-line example: an MLP on Fashion-MNIST with the fit loop.
//   build/release/examples/mlp_fashion
#include <soma/soma.h>
#include <soma/train.h>

#include <cstdio>

int main() {
    using namespace soma;
    auto train = std::make_shared<data::TensorDataset>(data::fashion_mnist("", true));
    auto test = std::make_shared<data::TensorDataset>(data::fashion_mnist("", false));
    nn::Sequential model;
    model.emplace<nn::Flatten>();
    model.emplace<nn::Linear>(nn::LinearOptions{.in = 784, .out = 256});
    model.emplace<nn::ReLU>();
    model.emplace<nn::Linear>(nn::LinearOptions{.in = 256, .out = 10});
    optim::Adam opt(model.parameters(), {.lr = 1e-3});
    nn::CrossEntropyLoss loss;
    data::DataLoader train_loader(train, {.batch_size = 128, .shuffle = true});
    data::DataLoader test_loader(test, {.batch_size = 1000});
    auto result = train::fit(model, loss, opt, train_loader, &test_loader,
                             {.epochs = 5, .out_dir = "runs/mlp"});  // curves, checkpoint, CSV
    std::printf("test accuracy %.4f\n", result.history.back().val_metric);
}
