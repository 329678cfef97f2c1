// float32 convolution on oneDNN (see conv_dnnl.h).
//
// One primitive per (geometry, pass, batch slice): forward, backward-data (also
// conv_transpose2d's forward) or backward-weights, created once in the layouts of layout_for
// (oneDNN's blocked ones, or plain) and kept in a small cache with the reorders between those
// layouts and the caller's plain NCHW / OIHW buffers, their intermediate buffers and the
// scratchpads. A call wraps the caller's pointers in memory objects, reorders the inputs, runs
// the primitive and reorders the outputs back. Each cache entry has its own mutex (its buffers
// are shared by its calls). oneDNN's reference kernels (plain loops) are never used: such a
// geometry falls back to im2col.
//
// Threads: the Debian oneDNN runs on OpenMP, whose idle threads spin: on the 2-core machine,
// next to Soma's pool and OpenBLAS's, a 2-thread CNN step took 30x longer (OMP_WAIT_POLICY
// can only be set before the process starts). So oneDNN runs single-threaded
// (omp_set_num_threads(1) on each calling thread) and Soma parallelises over the batch on the
// same OpenMP team: slice p of the images runs on thread p, through its own primitive.
#include "nn/conv_dnnl.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <unordered_map>
#include <vector>

#include "backend/cpu/parallel_for.h"
#include "soma/parallel.h"

namespace soma::conv {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

std::atomic<bool>& dnnl_flag() {
    static std::atomic<bool> on{[] {
        const char* e = std::getenv("SOMA_CONV");
        return !(e && std::strcmp(e, "ref") == 0);
    }()};
    return on;
}

std::atomic<uint64_t>& served() {
    static std::atomic<uint64_t> n{0};
    return n;
}

// Layouts for the primitives: oneDNN's choice (format_tag::any, blocked by 8 channels on AVX2,
// with reorders from and to the caller's plain buffers) or the plain layouts themselves (no
// reorders; oneDNN then runs im2col + its own GEMM). Blocked wins when both channel counts per
// group fill a block: on [64, 32, 14, 14] 3x3 its kernels with the reorders take 6.8 ms per pass
// against 8.9-9.8 ms plain. With 1 input channel (the first conv of a CNN) the blocked kernels
// waste 7/8 of each block and the reorders of the 28x28 maps dominate: plain takes 1.1-1.8 ms
// against 2.2-5.1 ms. Depthwise convolutions keep oneDNN's choice (its depthwise kernels are
// blocked). SOMA_CONV_LAYOUT=plain|any overrides the choice.
enum class Layout : int { any = 0, plain = 1 };
Layout layout_for(const ConvGeom& g) {
    static const int forced = [] {
        const char* e = std::getenv("SOMA_CONV_LAYOUT");
        if (e && std::strcmp(e, "plain") == 0) return 1;
        if (e && std::strcmp(e, "any") == 0) return 0;
        return -1;
    }();
    if (forced >= 0) return static_cast<Layout>(forced);
    const int64_t cg = g.c / g.groups, og = g.o / g.groups;
    if (g.groups > 1 && cg == 1 && og == 1) return Layout::any;
    return std::min(cg, og) < 8 ? Layout::plain : Layout::any;
}

dnnl::engine& engine() {
    static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    return eng;
}

dnnl::stream& stream() {
    thread_local dnnl::stream s(engine());
    return s;
}

// Sets OpenMP's thread count on this thread (the team oneDNN's kernels run on) and restores the
// previous count on exit, so other oneDNN users (the RNN kernels) see their own setting.
class OmpThreads {
  public:
    explicit OmpThreads(int n) : prev_(omp_get_max_threads()) {
        if (prev_ != n)
            omp_set_num_threads(n);
        else
            prev_ = -1;
    }
    ~OmpThreads() {
        if (prev_ > 0) omp_set_num_threads(prev_);
    }
    OmpThreads(const OmpThreads&) = delete;
    OmpThreads& operator=(const OmpThreads&) = delete;

  private:
    int prev_ = -1;
};

enum Kind : int { kForward = 0, kInputGrad = 1, kWeightGrad = 2 };

struct Key {
    ConvGeom g;
    int kind = 0, slot = 0, layout = 0;
    bool bias = false;

    bool operator==(const Key& o) const {
        return g.n == o.g.n && g.c == o.g.c && g.h == o.g.h && g.w == o.g.w && g.o == o.g.o &&
               g.kh == o.g.kh && g.kw == o.g.kw && g.ho == o.g.ho && g.wo == o.g.wo &&
               g.sh == o.g.sh && g.sw == o.g.sw && g.ph == o.g.ph && g.pw == o.g.pw &&
               g.dh == o.g.dh && g.dw == o.g.dw && g.groups == o.g.groups && kind == o.kind &&
               slot == o.slot && layout == o.layout && bias == o.bias;
    }
};

struct KeyHash {
    size_t operator()(const Key& k) const {
        const int64_t v[] = {k.g.n,  k.g.c,      k.g.h,  k.g.w,  k.g.o,    k.g.kh, k.g.kw,
                             k.g.ho, k.g.wo,     k.g.sh, k.g.sw, k.g.ph,   k.g.pw, k.g.dh,
                             k.g.dw, k.g.groups, k.kind, k.slot, k.layout, k.bias};
        size_t h = 1469598103934665603ull;
        for (int64_t x : v) h = (h ^ static_cast<size_t>(x)) * 1099511628211ull;
        return h;
    }
};

// One tensor argument of a primitive: the caller's plain layout, the primitive's, and when
// they differ a reorder through an owned buffer.
struct Arg {
    int id = 0;  // DNNL_ARG_*
    bool input = true;
    memory::desc user, prim;
    std::optional<dnnl::reorder> reorder;
    memory buf, scratch;  // scratch: the reorder's scratchpad (empty when it needs none)

    void init(int arg_id, bool is_input, const memory::desc& user_md, const memory::desc& prim_md) {
        id = arg_id;
        input = is_input;
        user = user_md;
        prim = prim_md;
        if (prim != user) {
            buf = memory(prim, engine());
            dnnl::primitive_attr attr;
            attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            const memory::desc& from = is_input ? user : prim;
            const memory::desc& to = is_input ? prim : user;
            dnnl::reorder::primitive_desc pd(engine(), from, engine(), to, attr);
            reorder = dnnl::reorder(pd);
            if (pd.scratchpad_desc().get_size() > 0)
                scratch = memory(pd.scratchpad_desc(), engine());
        }
    }
};

struct Entry {
    std::mutex mu;
    bool ok = false;
    dnnl::primitive prim;
    memory scratch;  // the primitive's scratchpad (user mode: entries run concurrently)
    std::vector<Arg> args;
};

using Dims = memory::dims;

struct Descs {
    Dims src, wei, dst, strides, dil, pl, pr;
    memory::desc src_md, wei_md, dst_md;  // plain
};

// The right padding that makes oneDNN's output size equal g.ho / g.wo, or -1 when none does.
int64_t right_pad(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, int64_t d) {
    const int64_t eff = (k - 1) * d + 1;
    const int64_t pr = std::max<int64_t>(0, (out - 1) * s + eff - in - p);
    const int64_t span = in + p + pr - eff;
    if (span < 0 || span / s + 1 != out) return -1;
    return pr;
}

bool make_descs(const ConvGeom& g, Descs& d) {
    if (g.n <= 0 || g.c <= 0 || g.o <= 0 || g.h <= 0 || g.w <= 0 || g.ho <= 0 || g.wo <= 0)
        return false;
    const int64_t prh = right_pad(g.h, g.ho, g.kh, g.sh, g.ph, g.dh);
    const int64_t prw = right_pad(g.w, g.wo, g.kw, g.sw, g.pw, g.dw);
    if (prh < 0 || prw < 0) return false;
    d.src = {g.n, g.c, g.h, g.w};
    d.dst = {g.n, g.o, g.ho, g.wo};
    if (g.groups == 1)
        d.wei = {g.o, g.c, g.kh, g.kw};
    else
        d.wei = {g.groups, g.o / g.groups, g.c / g.groups, g.kh, g.kw};
    d.strides = {g.sh, g.sw};
    d.dil = {g.dh - 1, g.dw - 1};
    d.pl = {g.ph, g.pw};
    d.pr = {prh, prw};
    d.src_md = memory::desc(d.src, dt::f32, tag::nchw);
    d.dst_md = memory::desc(d.dst, dt::f32, tag::nchw);
    d.wei_md = memory::desc(d.wei, dt::f32, g.groups == 1 ? tag::oihw : tag::goihw);
    return true;
}

void build(Entry& e, const Key& k) {
    Descs d;
    if (!make_descs(k.g, d)) return;
    const bool any = k.layout == static_cast<int>(Layout::any);
    const memory::desc src_any = any ? memory::desc(d.src, dt::f32, tag::any) : d.src_md;
    const memory::desc dst_any = any ? memory::desc(d.dst, dt::f32, tag::any) : d.dst_md;
    const memory::desc wei_any = any ? memory::desc(d.wei, dt::f32, tag::any) : d.wei_md;
    const memory::desc bias_md({k.g.o}, dt::f32, tag::x);
    const auto alg = dnnl::algorithm::convolution_direct;
    auto& eng = engine();

    const bool fwd_bias = k.kind == kForward && k.bias;
    auto fwd_desc =
        fwd_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_any,
                                                   wei_any, bias_md, dst_any, d.strides, d.dil,
                                                   d.pl, d.pr)
                 : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_any,
                                                   wei_any, dst_any, d.strides, d.dil, d.pl, d.pr);
    // Scratchpads are the caller's: the library's default one is global to the process, unsafe
    // when Soma's threads run primitives at the same time.
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, attr, eng);
    // oneDNN's reference kernels (plain loops) are far slower than im2col + GEMM: fall back.
    auto is_ref = [](const auto& pd) { return std::strncmp(pd.impl_info_str(), "ref", 3) == 0; };
    if (k.kind == kForward) {
        if (is_ref(fwd_pd)) return;
        e.prim = dnnl::convolution_forward(fwd_pd);
        e.scratch = memory(fwd_pd.scratchpad_desc(), eng);
        e.args.resize(fwd_bias ? 4 : 3);
        e.args[0].init(DNNL_ARG_SRC, true, d.src_md, fwd_pd.src_desc());
        e.args[1].init(DNNL_ARG_WEIGHTS, true, d.wei_md, fwd_pd.weights_desc());
        e.args[2].init(DNNL_ARG_DST, false, d.dst_md, fwd_pd.dst_desc());
        if (fwd_bias) e.args[3].init(DNNL_ARG_BIAS, true, bias_md, fwd_pd.bias_desc());
    } else if (k.kind == kInputGrad) {
        dnnl::convolution_backward_data::desc bd(alg, src_any, wei_any, dst_any, d.strides, d.dil,
                                                 d.pl, d.pr);
        dnnl::convolution_backward_data::primitive_desc pd(bd, attr, eng, fwd_pd);
        e.scratch = memory(pd.scratchpad_desc(), eng);
        if (is_ref(pd)) return;
        e.prim = dnnl::convolution_backward_data(pd);
        e.args.resize(3);
        e.args[0].init(DNNL_ARG_DIFF_DST, true, d.dst_md, pd.diff_dst_desc());
        e.args[1].init(DNNL_ARG_WEIGHTS, true, d.wei_md, pd.weights_desc());
        e.args[2].init(DNNL_ARG_DIFF_SRC, false, d.src_md, pd.diff_src_desc());
    } else {
        dnnl::convolution_backward_weights::desc bd(alg, src_any, wei_any, dst_any, d.strides,
                                                    d.dil, d.pl, d.pr);
        dnnl::convolution_backward_weights::primitive_desc pd(bd, attr, eng, fwd_pd);
        e.scratch = memory(pd.scratchpad_desc(), eng);
        if (is_ref(pd)) return;
        e.prim = dnnl::convolution_backward_weights(pd);
        e.args.resize(3);
        e.args[0].init(DNNL_ARG_SRC, true, d.src_md, pd.src_desc());
        e.args[1].init(DNNL_ARG_DIFF_DST, true, d.dst_md, pd.diff_dst_desc());
        e.args[2].init(DNNL_ARG_DIFF_WEIGHTS, false, d.wei_md, pd.diff_weights_desc());
    }
    e.ok = true;
}

std::shared_ptr<Entry> lookup(const Key& k) {
    static std::mutex mu;
    static std::unordered_map<Key, std::shared_ptr<Entry>, KeyHash> cache;
    constexpr size_t kMaxEntries = 256;
    std::shared_ptr<Entry> e;
    {
        std::lock_guard<std::mutex> lk(mu);
        auto it = cache.find(k);
        if (it != cache.end()) return it->second;
        if (cache.size() >= kMaxEntries) cache.clear();  // in-flight users keep theirs alive
        e = std::make_shared<Entry>();
        cache.emplace(k, e);
    }
    // Built outside the cache lock, under the entry's (a second caller waits on it in run()).
    std::lock_guard<std::mutex> lk(e->mu);
    try {
        build(*e, k);
    } catch (const dnnl::error&) {
        e->ok = false;
        e->args.clear();
    }
    return e;
}

void run_reorder(Arg& a, const memory& from, const memory& to) {
    std::unordered_map<int, memory> args{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    if (a.scratch) args.emplace(DNNL_ARG_SCRATCHPAD, a.scratch);
    a.reorder->execute(stream(), args);
}

// Runs entry e (built) on the caller's buffers, ptrs in the order of Entry::args.
void execute(Entry& e, const std::vector<const void*>& ptrs) {
    std::lock_guard<std::mutex> lk(e.mu);
    OmpThreads omp(1);
    auto& eng = engine();
    auto& s = stream();
    std::unordered_map<int, memory> margs;
    std::vector<std::pair<Arg*, memory>> outs;  // outputs to reorder back into the caller's
    for (size_t i = 0; i < ptrs.size(); ++i) {
        Arg& a = e.args[i];
        memory um(a.user, eng, const_cast<void*>(ptrs[i]));
        if (!a.reorder) {
            margs.emplace(a.id, um);
        } else if (a.input) {
            run_reorder(a, um, a.buf);
            margs.emplace(a.id, a.buf);
        } else {
            margs.emplace(a.id, a.buf);
            outs.emplace_back(&a, um);
        }
    }
    margs.emplace(DNNL_ARG_SCRATCHPAD, e.scratch);
    e.prim.execute(s, margs);
    for (auto& [a, um] : outs) run_reorder(*a, a->buf, um);
    s.wait();
}

// One pass over the batch split in `parts` contiguous slices, slice p on Soma's thread p, each
// a single-threaded oneDNN primitive (its own cache entry: slot p). Per-image buffers advance
// by their image size; the weights (and bias) are shared. The weight gradient's slices write
// partial sums (slice 0 into dw, the others into scratch) added in slice order afterwards, so
// results depend only on the thread count.
bool run(int kind, const ConvGeom& g, bool bias, std::vector<const void*> ptrs) {
    if (!use_dnnl()) return false;
    OmpThreads omp(1);  // oneDNN's kernels fix their thread count when created
    const int parts = static_cast<int>(std::clamp<int64_t>(get_num_threads(), 1, g.n));
    const int layout = static_cast<int>(layout_for(g));
    std::vector<std::shared_ptr<Entry>> entries(parts);
    std::vector<ConvGeom> geoms(parts);
    for (int p = 0; p < parts; ++p) {
        geoms[p] = g;
        geoms[p].n = g.n * (p + 1) / parts - g.n * p / parts;
        entries[p] = lookup(Key{geoms[p], kind, p, layout, bias});
        std::lock_guard<std::mutex> lk(entries[p]->mu);  // waits for a build in progress
        if (!entries[p]->ok) return false;
    }
    const int64_t in_img = g.c * g.h * g.w, out_img = g.o * g.ho * g.wo;
    const int64_t wsize = g.o * (g.c / g.groups) * g.kh * g.kw;
    // Image strides of each pointer (0: shared); the weight gradient's output handled apart.
    std::vector<int64_t> stride;
    if (kind == kForward) stride = {in_img, 0, out_img, 0};
    if (kind == kInputGrad) stride = {out_img, 0, in_img};
    if (kind == kWeightGrad) stride = {in_img, out_img, 0};
    std::vector<float> partial(kind == kWeightGrad ? (parts - 1) * wsize : 0);
    auto slice = [&](int p) {
        const int64_t n0 = g.n * p / parts;
        std::vector<const void*> q(ptrs);
        for (size_t i = 0; i < q.size(); ++i)
            q[i] = static_cast<const float*>(q[i]) + n0 * stride[i];
        if (kind == kWeightGrad && p > 0) q[2] = partial.data() + (p - 1) * wsize;
        execute(*entries[p], q);
    };
    if (parts == 1) {
        slice(0);
    } else {
        cpu::parallel_for(parts, 1, [&](int64_t lo, int64_t hi) {
            for (int64_t p = lo; p < hi; ++p) slice(static_cast<int>(p));
        });
    }
    if (kind == kWeightGrad && parts > 1) {
        float* dw = static_cast<float*>(const_cast<void*>(ptrs[2]));
        for (int p = 1; p < parts; ++p) {
            const float* src = partial.data() + (p - 1) * wsize;
            for (int64_t i = 0; i < wsize; ++i) dw[i] += src[i];
        }
    }
    served().fetch_add(1, std::memory_order_relaxed);
    return true;
}

}  // namespace

bool use_dnnl() { return dnnl_flag().load(std::memory_order_relaxed); }
void set_use_dnnl(bool on) { dnnl_flag() = on; }
uint64_t dnnl_conv_calls() { return served().load(); }

bool dnnl_conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* b,
                         float* y) {
    if (b) return run(kForward, g, true, {x, w, y, b});
    return run(kForward, g, false, {x, w, y});
}

bool dnnl_conv2d_input_grad(const ConvGeom& g, const float* dy, const float* w, const float* b,
                            float* dx) {
    if (!run(kInputGrad, g, false, {dy, w, dx})) return false;
    if (b) {
        const int64_t hw = g.h * g.w;
        cpu::parallel_for(g.n * g.c, std::max<int64_t>(1, (int64_t{1} << 15) / hw),
                          [&](int64_t lo, int64_t hi) {
                              for (int64_t p = lo; p < hi; ++p) {
                                  float* d = dx + p * hw;
                                  const float bc = b[p % g.c];
                                  for (int64_t i = 0; i < hw; ++i) d[i] += bc;
                              }
                          });
    }
    return true;
}

bool dnnl_conv2d_weight_grad(const ConvGeom& g, const float* x, const float* dy, float* dw) {
    return run(kWeightGrad, g, false, {x, dy, dw});
}

}  // namespace soma::conv
