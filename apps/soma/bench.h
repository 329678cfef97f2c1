// `soma bench`: one benchmark workload in this process, one JSON line on stdout.
//
//     soma bench mlp-train-b64 --threads 2
//     {"workload":"mlp-train-b64","threads":2,"samples_per_s":51234.5,"peak_rss_mb":88.1,...}
//
// Training workloads report samples_per_s, inference workloads latency_us (median per batch),
// op-overhead us_per_op, sgemm and fma-peak gflops; every line carries peak_rss_mb
// (getrusage). Warm-up is excluded from the timing. The PyTorch twin is bench/peers/
// torch_bench.py (same workloads, same JSON keys); bench/run.py compares the two.
#pragma once

#include <string>
#include <vector>

namespace soma::app {

struct BenchArgs {
    std::string workload;
    int threads = 1;
    double seconds = 3.0;  // timed window (after warm-up)
    bool list = false;
};

struct BenchWorkload {
    std::string name;
    std::string description;
};
/// The workloads `soma bench` knows, in table order.
const std::vector<BenchWorkload>& bench_workloads();

/// Runs one workload and returns its JSON line (no trailing newline). Throws UsageError for an
/// unknown workload.
std::string run_bench(const std::string& workload, int threads, double seconds);

/// `soma bench`: --list prints the workloads, else runs one and prints its JSON line.
int cmd_bench(const BenchArgs& a);

}  // namespace soma::app
