// k-means with tensors (distances by one GEMM), the Hungarian algorithm, accuracy and NMI.
#include "soma/gen/cluster.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "soma/autograd.h"
#include "soma/gen/frechet.h"
#include "soma/ops.h"
#include "soma/random.h"

namespace soma::gen {

namespace {

// Squared distances [N, K] = |x|^2 - 2 x c^T + |c|^2, clamped at 0 (rounding).
Tensor sq_distances(const Tensor& x, const Tensor& x2, const Tensor& c) {
    Tensor c2 = (c * c).sum({1}).unsqueeze(0);  // [1, K]
    return clamp(x2 - 2 * matmul(x, c.t()) + c2, 0.0, std::nullopt);
}

// Greedy k-means++ (as sklearn): the first centre uniformly; then 2 + floor(ln k) candidates,
// each drawn with probability proportional to the squared distance to the nearest centre so far,
// and the candidate that lowers the total squared distance most is kept.
Tensor kmeans_pp(const Tensor& x, const Tensor& x2, int64_t k, Generator& gen) {
    const int64_t n = x.size(0);
    const int64_t trials = 2 + static_cast<int64_t>(std::log(static_cast<double>(k)));
    std::vector<int64_t> chosen{static_cast<int64_t>(gen.next_below(static_cast<uint64_t>(n)))};
    Tensor d = sq_distances(x, x2, x.narrow(0, chosen[0], 1)).reshape({n});
    for (int64_t j = 1; j < k; ++j) {
        std::vector<double> dv = d.to_vector<double>();
        double total = 0;
        for (double v : dv) total += v;
        Tensor best_d;
        double best_pot = INFINITY;
        int64_t best = 0;
        for (int64_t t = 0; t < trials; ++t) {
            int64_t pick = n - 1;
            if (total <= 0) {
                pick = static_cast<int64_t>(gen.next_below(static_cast<uint64_t>(n)));
            } else {
                double r = gen.next_double() * total, acc = 0;
                for (int64_t i = 0; i < n; ++i) {
                    acc += dv[static_cast<size_t>(i)];
                    if (acc > r) {
                        pick = i;
                        break;
                    }
                }
            }
            Tensor nd = minimum(d, sq_distances(x, x2, x.narrow(0, pick, 1)).reshape({n}));
            double pot = nd.to(DType::float64).sum().item<double>();
            if (pot < best_pot) {
                best_pot = pot;
                best_d = nd;
                best = pick;
            }
        }
        chosen.push_back(best);
        d = best_d;
    }
    return index_select(x, 0, from_vector(chosen));
}

KMeansResult kmeans_once(const Tensor& x, const Tensor& x2, const KMeansOptions& o, uint64_t seed,
                         double tol_abs) {
    Generator gen(seed);
    const int64_t n = x.size(0), k = o.k;
    Tensor c = kmeans_pp(x, x2, k, gen);
    KMeansResult r;
    for (int64_t it = 1; it <= o.max_iter; ++it) {
        r.iterations = it;
        Tensor d = sq_distances(x, x2, c);
        Tensor labels = argmin(d, 1);                      // [N]
        Tensor onehot = one_hot(labels, k).to(x.dtype());  // [N, K]
        Tensor counts = onehot.sum({0});                   // [K]
        Tensor sums = matmul(onehot.t(), x);               // [K, D]
        Tensor next = sums / clamp(counts, 1.0, std::nullopt).unsqueeze(1);
        // Empty clusters: move them to the points farthest from their centres.
        std::vector<double> cnt = counts.to_vector<double>();
        if (std::any_of(cnt.begin(), cnt.end(), [](double v) { return v == 0; })) {
            Tensor far = gather(d, 1, labels.unsqueeze(1)).reshape({n});
            std::vector<double> fv = far.to_vector<double>();
            std::vector<int64_t> order(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
            std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
                return fv[static_cast<size_t>(a)] > fv[static_cast<size_t>(b)];
            });
            size_t used = 0;
            for (int64_t j = 0; j < k; ++j)
                if (cnt[static_cast<size_t>(j)] == 0)
                    next.narrow(0, j, 1).copy_(x.narrow(0, order[used++], 1));
        }
        double shift = ((next - c) * (next - c)).sum().item<double>();
        c = next;
        if (shift <= tol_abs) break;
    }
    Tensor d = sq_distances(x, x2, c);
    auto mn = min(d, 1);
    r.labels = mn.indices;
    r.inertia = mn.values.to(DType::float64).sum().item<double>();
    r.centroids = c;
    return r;
}

std::vector<int64_t> ids(const Tensor& t, const char* what) {
    SOMA_CHECK_SHAPE(t.defined() && t.dim() == 1, "clustering: ", what,
                     " must be a 1-D tensor of ids: got ", t.defined() ? t.shape() : Shape{}, ".");
    std::vector<int64_t> v = t.to_vector<int64_t>();
    for (int64_t e : v)
        SOMA_CHECK_VALUE(e >= 0, "clustering: ", what, " must be non-negative ids: got ", e);
    return v;
}

}  // namespace

KMeansResult kmeans(const Tensor& x0, const KMeansOptions& o) {
    SOMA_CHECK_SHAPE(x0.defined() && x0.dim() == 2, "kmeans: x must be [N, D]: got ",
                     x0.defined() ? x0.shape() : Shape{}, ".");
    SOMA_CHECK_VALUE(o.k >= 1 && o.k <= x0.size(0), "kmeans: k must be in [1, N]: got k = ", o.k,
                     ", N = ", x0.size(0));
    SOMA_CHECK_VALUE(o.max_iter >= 1 && o.n_init >= 1,
                     "kmeans: max_iter and n_init must be >= 1: got ", o.max_iter, ", ", o.n_init);
    NoGradGuard ng;
    Tensor x = x0.detach();
    if (x.dtype() != DType::float64) x = x.to(DType::float32);
    x = x.contiguous();
    Tensor x2 = (x * x).sum({1}, true);  // [N, 1]
    // sklearn's tolerance: tol times the mean per-feature variance.
    double tol_abs = o.tol * var(x, {0}, false).mean().item<double>();
    KMeansResult best;
    for (int64_t r = 0; r < o.n_init; ++r) {
        KMeansResult cur = kmeans_once(x, x2, o, o.seed + static_cast<uint64_t>(r), tol_abs);
        if (r == 0 || cur.inertia < best.inertia) best = cur;
    }
    return best;
}

// Shortest augmenting paths with row/column potentials u, v (the e-maxx formulation): for each
// row, grow a path over columns by Dijkstra on reduced costs, then flip it. O(rows^2 * cols).
std::vector<int64_t> hungarian(const std::vector<double>& a, int64_t n, int64_t m) {
    SOMA_CHECK_VALUE(n >= 0 && n <= m && static_cast<int64_t>(a.size()) == n * m,
                     "hungarian: need rows <= cols and rows * cols costs: got rows ", n, ", cols ",
                     m, ", ", a.size(), " costs");
    const double inf = std::numeric_limits<double>::infinity();
    auto N = static_cast<size_t>(n), M = static_cast<size_t>(m);
    std::vector<double> u(N + 1, 0), v(M + 1, 0);
    std::vector<size_t> p(M + 1, 0), way(M + 1, 0);  // p[j]: row (1-based) matched to column j
    for (size_t i = 1; i <= N; ++i) {
        p[0] = i;
        size_t j0 = 0;
        std::vector<double> minv(M + 1, inf);
        std::vector<char> used(M + 1, 0);
        do {
            used[j0] = 1;
            size_t i0 = p[j0], j1 = 0;
            double delta = inf;
            for (size_t j = 1; j <= M; ++j) {
                if (used[j]) continue;
                double cur = a[(i0 - 1) * M + (j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (size_t j = 0; j <= M; ++j) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            size_t j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    std::vector<int64_t> assign(N, -1);
    for (size_t j = 1; j <= M; ++j)
        if (p[j] != 0) assign[p[j] - 1] = static_cast<int64_t>(j - 1);
    return assign;
}

double clustering_accuracy(const Tensor& labels_true, const Tensor& labels_pred) {
    std::vector<int64_t> t = ids(labels_true, "labels_true"), p = ids(labels_pred, "labels_pred");
    SOMA_CHECK_SHAPE(t.size() == p.size(), "clustering_accuracy: label counts differ: got ",
                     labels_true.shape(), " and ", labels_pred.shape(), ".");
    if (t.empty()) return NAN;
    int64_t kt = *std::max_element(t.begin(), t.end()) + 1;
    int64_t kp = *std::max_element(p.begin(), p.end()) + 1;
    int64_t k = std::max(kt, kp);
    // Square contingency table; cost = -count, so the assignment maximises matches.
    std::vector<double> cost(static_cast<size_t>(k * k), 0.0);
    for (size_t i = 0; i < t.size(); ++i) cost[static_cast<size_t>(p[i] * k + t[i])] -= 1.0;
    std::vector<int64_t> match = hungarian(cost, k, k);
    double correct = 0;
    for (int64_t r = 0; r < k; ++r)
        correct -= cost[static_cast<size_t>(r * k + match[static_cast<size_t>(r)])];
    return correct / static_cast<double>(t.size());
}

double normalized_mutual_info(const Tensor& labels_true, const Tensor& labels_pred) {
    std::vector<int64_t> a = ids(labels_true, "labels_true"), b = ids(labels_pred, "labels_pred");
    SOMA_CHECK_SHAPE(a.size() == b.size(), "normalized_mutual_info: label counts differ: got ",
                     labels_true.shape(), " and ", labels_pred.shape(), ".");
    if (a.empty()) return NAN;
    auto n = static_cast<double>(a.size());
    std::map<int64_t, double> ca, cb;
    std::map<std::pair<int64_t, int64_t>, double> cab;
    for (size_t i = 0; i < a.size(); ++i) {
        ca[a[i]] += 1;
        cb[b[i]] += 1;
        cab[{a[i], b[i]}] += 1;
    }
    auto entropy = [n](const std::map<int64_t, double>& c) {
        double h = 0;
        for (auto& [k, v] : c) h -= v / n * std::log(v / n);
        return h;
    };
    double ha = entropy(ca), hb = entropy(cb);
    if (ca.size() == 1 && cb.size() == 1) return 1.0;
    double mi = 0;
    for (auto& [key, v] : cab) mi += v / n * std::log(v * n / (ca[key.first] * cb[key.second]));
    double denom = (ha + hb) / 2;
    return denom > 0 ? std::max(mi, 0.0) / denom : 0.0;
}

// Covariance C = xc^T xc / (N - 1) with xc = x - mean; C = V diag(l) V^T; the components are the
// eigenvectors of the k largest eigenvalues, the projection xc V_k.
PcaResult pca(const Tensor& x, int64_t k) {
    SOMA_CHECK_SHAPE(x.defined() && x.dim() == 2 && x.size(0) >= 2,
                     "pca: x must be [N, D] with N >= 2: got ", x.defined() ? x.shape() : Shape{},
                     ".");
    const int64_t n = x.size(0), d = x.size(1);
    SOMA_CHECK_VALUE(k >= 1 && k <= d, "pca: k must be in [1, ", d, "], got ", k);
    NoGradGuard ng;
    DType dt = x.dtype() == DType::float64 ? DType::float64 : DType::float32;
    Tensor xf = x.detach().to(DType::float64);
    Tensor mean = xf.mean({0});
    Tensor xc = xf - mean.unsqueeze(0);
    Tensor cov = matmul(xc.t(), xc) / static_cast<double>(n - 1);
    std::vector<double> values, vectors;
    symmetric_eigen(cov.contiguous().to_vector<double>(), d, values, vectors);
    std::vector<double> comp(static_cast<size_t>(k * d));
    PcaResult r;
    for (int64_t j = 0; j < k; ++j) {
        const int64_t col = d - 1 - j;  // eigenvalues ascending
        double big = 0;
        for (int64_t i = 0; i < d; ++i) {
            double v = vectors[static_cast<size_t>(i * d + col)];
            if (std::fabs(v) > std::fabs(big)) big = v;
        }
        double sign = big < 0 ? -1.0 : 1.0;
        for (int64_t i = 0; i < d; ++i)
            comp[static_cast<size_t>(j * d + i)] = sign * vectors[static_cast<size_t>(i * d + col)];
        r.explained.push_back(std::max(values[static_cast<size_t>(col)], 0.0));
    }
    Tensor c = from_vector(comp, {k, d});
    r.projected = matmul(xc, c.t()).to(dt);
    r.components = c.to(dt);
    r.mean = mean.to(dt);
    return r;
}

}  // namespace soma::gen
