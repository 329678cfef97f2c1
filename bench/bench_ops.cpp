// Microbenchmarks (Google Benchmark): per-op overhead and sgemm. The end-to-end workloads and
// the comparison with PyTorch are `soma bench` and bench/run.py.
//
//     build/release/bench/soma_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/parallel.h"
#include "soma/random.h"
#include "soma/tensor.h"

namespace {

// 1-element add; both inputs require grad, so every add records a graph node.
void BM_AddAutograd(benchmark::State& state) {
    soma::Tensor a = soma::ones({1}).requires_grad_(), b = soma::ones({1}).requires_grad_();
    for (auto _ : state) {
        soma::Tensor c = a + b;
        benchmark::DoNotOptimize(c);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AddAutograd);

// The same add under no_grad: the cost of the op itself (dispatch, allocation, kernel).
void BM_AddNoGrad(benchmark::State& state) {
    soma::Tensor a = soma::ones({1}).requires_grad_(), b = soma::ones({1}).requires_grad_();
    soma::NoGradGuard ng;
    for (auto _ : state) {
        soma::Tensor c = a + b;
        benchmark::DoNotOptimize(c);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AddNoGrad);

// n x n x n float32 matmul on state.range(1) threads; reports GFLOP/s.
void BM_Sgemm(benchmark::State& state) {
    const int64_t n = state.range(0);
    soma::set_num_threads(static_cast<int>(state.range(1)));
    soma::manual_seed(0);
    soma::Tensor a = soma::randn({n, n}), b = soma::randn({n, n});
    for (auto _ : state) {
        soma::Tensor c = soma::matmul(a, b);
        benchmark::DoNotOptimize(c);
    }
    state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(n * n * n),
                                                   benchmark::Counter::kIsIterationInvariantRate);
    soma::set_num_threads(1);
}
BENCHMARK(BM_Sgemm)
    ->ArgNames({"n", "threads"})
    ->Args({256, 1})
    ->Args({1024, 1})
    ->Args({256, 2})
    ->Args({1024, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    soma::set_num_threads(1);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
