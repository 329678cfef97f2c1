// Modules: registration, dotted names, state dicts, printing, summary, layer shapes and errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "soma/nn.h"
#include "soma/soma.h"

using namespace soma;
using ::testing::HasSubstr;

namespace {

struct Mlp : nn::Module {
    nn::Linear fc1{{.in = 4, .out = 8}};
    nn::Linear fc2{{.in = 8, .out = 3}};
    Mlp() {
        register_module("fc1", fc1);
        register_module("fc2", fc2);
    }
    Tensor forward(const Tensor& x) override { return fc2(relu(fc1(x))); }
    std::string type_name() const override { return "Mlp"; }
};

std::vector<std::string> names(const nn::NamedTensors& v) {
    std::vector<std::string> out;
    for (auto& [n, t] : v) out.push_back(n);
    return out;
}

}  // namespace

TEST(NnModule, NamedParametersUseDottedPyTorchNames) {
    Mlp m;
    EXPECT_EQ(names(m.named_parameters()),
              (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
    EXPECT_EQ(m.fc1.weight.shape(), (Shape{8, 4}));
    EXPECT_EQ(m.num_parameters(), 8 * 4 + 8 + 3 * 8 + 3);
    for (auto& p : m.parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(NnModule, ForwardBackwardAndZeroGrad) {
    manual_seed(0);
    Mlp m;
    auto y = m(randn({5, 4}));
    EXPECT_EQ(y.shape(), (Shape{5, 3}));
    y.sum().backward();
    EXPECT_TRUE(m.fc1.weight.grad().defined());
    m.zero_grad();
    EXPECT_FALSE(m.fc1.weight.grad().defined());
}

TEST(NnModule, StateDictRoundTripSharesIdentity) {
    manual_seed(1);
    Mlp a;
    manual_seed(2);
    Mlp b;
    EXPECT_FALSE(equal(a.fc1.weight, b.fc1.weight));
    Tensor before = b.fc1.weight;  // the handle an optimizer would hold
    b.load_state_dict(a.state_dict());
    EXPECT_TRUE(equal(a.fc1.weight, b.fc1.weight));
    EXPECT_TRUE(before.is_same(b.fc1.weight));
    EXPECT_TRUE(equal(before, a.fc1.weight));
}

TEST(NnModule, LoadStateDictStrictErrorsListKeys) {
    Mlp m;
    auto sd = m.state_dict();
    sd.erase(sd.begin());                          // missing fc1.weight
    sd.emplace_back("fc3.weight", zeros({2, 2}));  // unexpected
    sd[1].second = zeros({7});                     // fc2.weight shape mismatch
    try {
        m.load_state_dict(sd);
        FAIL() << "expected ValueError";
    } catch (const ValueError& e) {
        std::string msg = e.what();
        EXPECT_THAT(msg, HasSubstr("missing keys: fc1.weight"));
        EXPECT_THAT(msg, HasSubstr("unexpected keys: fc3.weight"));
        EXPECT_THAT(msg, HasSubstr("shape mismatch: fc2.weight: checkpoint [7], model [3, 8]"));
    }
}

TEST(NnModule, ErrorsNameTheModulePath) {
    Mlp m;
    try {
        m(zeros({32, 17}));
        FAIL() << "expected ShapeError";
    } catch (const ShapeError& e) {
        EXPECT_STREQ(e.what(),
                     "fc1 (Linear): input has 17 features, expected 4: input shape [32, 17]");
    }
}

TEST(NnModule, PrintingLikePyTorch) {
    Mlp m;
    EXPECT_EQ(m.to_string(),
              "Mlp(\n"
              "  (fc1): Linear(in_features=4, out_features=8, bias=True)\n"
              "  (fc2): Linear(in_features=8, out_features=3, bias=True)\n"
              ")");
}

TEST(NnModule, SummaryListsOutputShapesAndCounts) {
    nn::Sequential seq;
    seq.emplace<nn::Conv2d>(
        nn::Conv2dOptions{.in = 1, .out = 4, .kernel = {3, 3}, .padding = {1, 1}});
    seq.emplace<nn::ReLU>();
    seq.emplace<nn::MaxPool2d>(nn::functional::Pool2dArgs{.kernel = {2, 2}});
    seq.emplace<nn::Flatten>();
    seq.emplace<nn::Linear>(nn::LinearOptions{.in = 4 * 14 * 14, .out = 10});
    std::string s = seq.summary({2, 1, 28, 28});
    EXPECT_THAT(s, HasSubstr("0 (Conv2d)"));
    EXPECT_THAT(s, HasSubstr("[2, 4, 28, 28]"));
    EXPECT_THAT(s, HasSubstr("[2, 4, 14, 14]"));
    EXPECT_THAT(s, HasSubstr("[2, 10]"));
    EXPECT_THAT(s, HasSubstr("Total params: 7,890"));  // 40 + 7840 + 10
    EXPECT_TRUE(seq.is_training());
}

TEST(NnModule, TrainEvalPropagatesAndDropoutObeysIt) {
    nn::Sequential seq;
    auto d = seq.emplace<nn::Dropout>(0.5);
    seq.eval();
    EXPECT_FALSE(d->is_training());
    auto x = ones({100});
    EXPECT_TRUE(equal(seq(x), x));
    seq.train();
    auto y = seq(x);
    double zeros_frac = eq(y, 0).to(DType::float32).mean().item<double>();
    EXPECT_GT(zeros_frac, 0.3);
    EXPECT_LT(zeros_frac, 0.7);
}

TEST(NnModule, BatchNormBuffersAndEval) {
    nn::BatchNorm2d bn({.features = 3});
    EXPECT_EQ(names(bn.state_dict()),
              (std::vector<std::string>{"weight", "bias", "running_mean", "running_var",
                                        "num_batches_tracked"}));
    manual_seed(3);
    auto x = randn({4, 3, 5, 5}) * 2 + 1;
    bn(x);
    EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
    EXPECT_GT(bn.running_mean.mean().item<double>(), 0.05);  // moved toward 1
    bn.eval();
    auto y = bn(x);
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_THROW(bn(zeros({4, 3})), ShapeError);
}

TEST(NnModule, DefaultInitBoundsMatchPyTorch) {
    manual_seed(4);
    nn::Linear l({.in = 100, .out = 50});
    double bound = 1.0 / std::sqrt(100.0);
    EXPECT_LE(amax(abs(l.weight)).item<double>(), bound);
    EXPECT_GT(amax(abs(l.weight)).item<double>(), 0.9 * bound);
    EXPECT_LE(amax(abs(l.bias)).item<double>(), bound);
    nn::Embedding e({.num = 10, .dim = 4, .padding_idx = 2});
    EXPECT_EQ(abs(e.weight.select(0, 2)).sum().item<double>(), 0.0);
}

TEST(NnModule, ToDtypeKeepsHandles) {
    Mlp m;
    Tensor w = m.fc1.weight;
    m.to(DType::float64);
    EXPECT_EQ(w.dtype(), DType::float64);
    EXPECT_EQ(m(zeros({1, 4}, {.dtype = DType::float64})).dtype(), DType::float64);
}

TEST(NnModule, GetByDottedName) {
    Mlp m;
    EXPECT_TRUE(m.get("fc2.bias").is_same(m.fc2.bias));
    EXPECT_THROW(m.get("fc9.bias"), ValueError);
}
