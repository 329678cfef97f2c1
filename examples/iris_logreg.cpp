// Logistic regression on the iris data set (python3-sklearn's iris.csv), written directly with
// tensors, autograd and a hand-written gradient-descent loop — no layers, no optimizer classes.
//
//   build/release/examples/iris_logreg [path/to/iris.csv]
#include <soma/soma.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Iris {
    soma::Tensor x;  // [150, 4] float32
    soma::Tensor y;  // [150] int64
};

// sklearn's iris.csv: a first line "150,4,setosa,versicolor,virginica", then 4 features + label.
Iris load_iris(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error("iris_logreg: cannot open " + path +
                                 " (Debian package python3-sklearn provides it)");
    std::string line;
    std::getline(in, line);
    std::vector<float> feats;
    std::vector<int64_t> labels;
    int lineno = 1;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.empty()) continue;
        std::stringstream ss(line);
        std::string cell;
        std::vector<double> row;
        while (std::getline(ss, cell, ',')) row.push_back(std::stod(cell));
        if (row.size() != 5)
            throw std::runtime_error(path + ":" + std::to_string(lineno) + ": expected 5 columns");
        for (int i = 0; i < 4; ++i) feats.push_back(static_cast<float>(row[i]));
        labels.push_back(static_cast<int64_t>(row[4]));
    }
    auto n = static_cast<int64_t>(labels.size());
    return {soma::from_vector(feats, {n, 4}), soma::from_vector(labels, {n})};
}

}  // namespace

int main(int argc, char** argv) try {
    std::string path =
        argc > 1 ? argv[1] : "/usr/lib/python3/dist-packages/sklearn/datasets/data/iris.csv";
    Iris data = load_iris(path);
    soma::manual_seed(0);

    // Seeded shuffle, then 120 training and 30 test rows.
    const int64_t n = data.x.size(0), n_train = 120;
    std::vector<int64_t> order(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    soma::Generator gen(42);
    for (int64_t i = n - 1; i > 0; --i)
        std::swap(order[i], order[static_cast<int64_t>(gen.next_below(i + 1))]);
    auto perm = soma::from_vector(order);
    auto x = soma::index_select(data.x, 0, perm);
    auto y = soma::index_select(data.y, 0, perm);
    auto x_train = x.narrow(0, 0, n_train), y_train = y.narrow(0, 0, n_train);
    auto x_test = x.narrow(0, n_train, n - n_train), y_test = y.narrow(0, n_train, n - n_train);

    // Standardise with the training statistics.
    auto mu = x_train.mean({0}, true), sd = soma::std(x_train, {0}, true, true);
    x_train = (x_train - mu) / sd;
    x_test = (x_test - mu) / sd;

    // Model: softmax(x W + b), 3 classes.
    auto w = soma::zeros({4, 3}).requires_grad_();
    auto b = soma::zeros({3}).requires_grad_();
    auto targets = soma::one_hot(y_train, 3).to(soma::DType::float32);

    auto accuracy = [&](const soma::Tensor& xs, const soma::Tensor& ys) {
        soma::NoGradGuard ng;
        auto pred = soma::argmax(soma::matmul(xs, w) + b, 1);
        return soma::eq(pred, ys).to(soma::DType::float32).mean().item<double>();
    };

    const double lr = 0.5;
    for (int epoch = 1; epoch <= 200; ++epoch) {
        auto logits = soma::matmul(x_train, w) + b;
        auto loss = -(soma::log_softmax(logits, 1) * targets).sum({1}).mean();
        loss.backward();
        {
            soma::NoGradGuard ng;  // plain gradient descent
            w.sub_(w.grad() * lr);
            b.sub_(b.grad() * lr);
            w.grad().zero_();
            b.grad().zero_();
        }
        if (epoch == 1 || epoch % 50 == 0)
            std::printf("epoch %3d  loss %.4f  train acc %.3f\n", epoch, loss.item<double>(),
                        accuracy(x_train, y_train));
    }
    std::printf("iris logistic regression: test accuracy %.3f on %lld held-out flowers\n",
                accuracy(x_test, y_test), static_cast<long long>(n - n_train));
    std::cout << "weights:\n" << w << "\n";
    return 0;
} catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
}
