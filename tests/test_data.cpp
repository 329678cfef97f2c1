// soma/data: datasets, DataLoader (batching, shuffling, prefetch, errors), IDX and CSV readers
// (round trips and every rejected-file case), Fashion-MNIST and sklearn's CSVs when installed,
// and the image transforms.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "soma/autograd.h"
#include "soma/data.h"
#include "soma/ops.h"
#include "soma/random.h"
#include "soma/tensor.h"
#include "test_util.h"

using namespace soma;
using namespace soma::testing;
using namespace soma::data;
namespace fs = std::filesystem;

namespace {

// A scratch directory removed at the end of each test.
class TempDir {
  public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "soma_data_XXXXXX").string();
        path_ = mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
}

// x: [n, 2] float32 rows (i, 10 i); y: [n] int64 = i.
std::shared_ptr<TensorDataset> numbered(int64_t n) {
    std::vector<float> x;
    std::vector<int64_t> y;
    for (int64_t i = 0; i < n; ++i) {
        x.push_back(static_cast<float>(i));
        x.push_back(static_cast<float>(10 * i));
        y.push_back(i);
    }
    return std::make_shared<TensorDataset>(from_vector(x, {n, 2}), from_vector(y, {n}));
}

// Every target of one epoch, in order.
std::vector<int64_t> epoch_targets(DataLoader& loader) {
    std::vector<int64_t> out;
    for (const Example& b : loader) {
        auto t = vi(b.target);
        out.insert(out.end(), t.begin(), t.end());
    }
    return out;
}

// A dataset without a fast path: example i is a [2, 3] tensor filled with i, target i.
class FilledDataset : public Dataset {
  public:
    explicit FilledDataset(int64_t n) : n_(n) {}
    int64_t size() const override { return n_; }
    Example get(int64_t i) const override {
        return {full({2, 3}, static_cast<double>(i)), scalar_tensor(i)};
    }

  private:
    int64_t n_;
};

const std::string kSklearnDir = "/usr/lib/python3/dist-packages/sklearn/datasets/data";
const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";

}  // namespace

// ---- datasets --------------------------------------------------------------------------------

TEST(DataDataset, TensorDatasetGet) {
    auto ds = numbered(6);
    EXPECT_EQ(ds->size(), 6);
    Example e = ds->get(2);
    EXPECT_EQ(e.input.shape(), (Shape{2}));
    EXPECT_EQ(vf(e.input), (std::vector<float>{2, 20}));
    EXPECT_EQ(e.target.dim(), 0);
    EXPECT_EQ(e.target.item<int64_t>(), 2);
    EXPECT_CONTAINS(error_of<IndexError>([&] { ds->get(6); }), "index 6 is out of range");
    EXPECT_CONTAINS(error_of<IndexError>([&] { ds->get(-1); }), "index -1");
}

TEST(DataDataset, TensorDatasetShapeMismatchNamesBothShapes) {
    std::string msg = error_of<ShapeError>([] {
        TensorDataset(zeros({6, 2}), zeros({5}, {.dtype = DType::int64}));
    });
    EXPECT_CONTAINS(msg, "TensorDataset");
    EXPECT_CONTAINS(msg, "[6, 2]");
    EXPECT_CONTAINS(msg, "[5]");
}

TEST(DataDataset, GetBatchGathersRows) {
    auto ds = numbered(6);
    Example b = ds->get_batch({5, 0, 3});
    EXPECT_EQ(b.input.shape(), (Shape{3, 2}));
    EXPECT_TRUE(b.input.is_contiguous());
    EXPECT_EQ(vf(b.input), (std::vector<float>{5, 50, 0, 0, 3, 30}));
    EXPECT_EQ(vi(b.target), (std::vector<int64_t>{5, 0, 3}));
    EXPECT_THROW(ds->get_batch({0, 7}), IndexError);
}

TEST(DataDataset, TensorsNeverRequireGrad) {
    Tensor x = randn({4, 3}).requires_grad_();
    TensorDataset ds(x, arange(4));
    EXPECT_FALSE(ds.get(1).input.requires_grad());
    EXPECT_FALSE(ds.get_batch({1, 2}).input.requires_grad());
}

TEST(DataDataset, GenericCollateStacks) {
    FilledDataset ds(5);
    Example b = ds.get_batch({4, 1});
    EXPECT_EQ(b.input.shape(), (Shape{2, 2, 3}));
    EXPECT_EQ(b.target.shape(), (Shape{2}));
    EXPECT_EQ(vf(b.input), (std::vector<float>{4, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1}));
    EXPECT_EQ(vi(b.target), (std::vector<int64_t>{4, 1}));

    std::string msg = error_of<ShapeError>([] {
        collate({{zeros({2, 3}), Tensor()}, {zeros({3, 2}), Tensor()}});
    });
    EXPECT_CONTAINS(msg, "collate: example 1 has input shape [3, 2], expected [2, 3]");
    EXPECT_THROW(
        collate({{zeros({2}), Tensor()}, {zeros({2}, {.dtype = DType::float64}), Tensor()}}),
        DTypeError);
    EXPECT_THROW(collate({}), ValueError);
}

TEST(DataDataset, Subset) {
    auto ds = numbered(10);
    Subset s(ds, {7, 2, 9});
    EXPECT_EQ(s.size(), 3);
    EXPECT_EQ(s.get(0).target.item<int64_t>(), 7);
    EXPECT_EQ(vi(s.get_batch({2, 1}).target), (std::vector<int64_t>{9, 2}));
    EXPECT_THROW(s.get(3), IndexError);
    EXPECT_THROW(Subset(ds, {10}), IndexError);
}

TEST(DataDataset, RandomSplitCountsAreDisjointAndDeterministic) {
    auto ds = numbered(10);
    auto parts = random_split(ds, {6, 4}, 42);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].size(), 6);
    EXPECT_EQ(parts[1].size(), 4);
    std::vector<int64_t> all = parts[0].indices();
    all.insert(all.end(), parts[1].indices().begin(), parts[1].indices().end());
    std::sort(all.begin(), all.end());
    for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(all[i], i);

    auto again = random_split(ds, {6, 4}, 42);
    EXPECT_EQ(again[0].indices(), parts[0].indices());
    auto other = random_split(ds, {6, 4}, 43);
    EXPECT_NE(other[0].indices(), parts[0].indices());
}

TEST(DataDataset, RandomSplitFractions) {
    auto ds = numbered(10);
    auto parts = random_split(ds, {0.5, 0.3, 0.2}, 0);
    EXPECT_EQ(parts[0].size(), 5);
    EXPECT_EQ(parts[1].size(), 3);
    EXPECT_EQ(parts[2].size(), 2);
    // floor(3.4) = 3 each, the one left over goes to the first part (as PyTorch).
    auto uneven = random_split(ds, {0.34, 0.33, 0.33}, 0);
    EXPECT_EQ(uneven[0].size(), 4);
    EXPECT_EQ(uneven[1].size(), 3);
    EXPECT_EQ(uneven[2].size(), 3);
    EXPECT_CONTAINS(error_of<ValueError>([&] {
                        random_split(ds, {6, 3}, 0);
                    }),
                    "lengths sum to 9, expected the dataset size 10");
    EXPECT_THROW(random_split(ds, {0.5, 0.6}, 0), ValueError);
}

TEST(DataDataset, RandomPermutationIsPinned) {
    // The same seed must give the same order on every machine (Philox + Fisher-Yates).
    auto p = random_permutation(10, 0);
    EXPECT_EQ(p, (std::vector<int64_t>{8, 2, 7, 4, 3, 0, 5, 6, 1, 9}));
    // epoch 1 of a DataLoader with seed 0 reads the stream at counter 2^32
    EXPECT_EQ(random_permutation(10, 0, 1ull << 32),
              (std::vector<int64_t>{0, 3, 4, 1, 9, 2, 6, 5, 8, 7}));
    std::vector<int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(sorted[i], i);
    EXPECT_NE(random_permutation(10, 0, 1ull << 32), p);
}

// ---- DataLoader ------------------------------------------------------------------------------

TEST(DataLoader, BatchCounts) {
    auto ds = numbered(10);
    DataLoader keep(ds, {.batch_size = 3});
    EXPECT_EQ(keep.size(), 4);
    std::vector<int64_t> sizes;
    for (const Example& b : keep) sizes.push_back(b.input.size(0));
    EXPECT_EQ(sizes, (std::vector<int64_t>{3, 3, 3, 1}));

    DataLoader drop(ds, {.batch_size = 3, .drop_last = true});
    EXPECT_EQ(drop.size(), 3);
    sizes.clear();
    for (const Example& b : drop) sizes.push_back(b.input.size(0));
    EXPECT_EQ(sizes, (std::vector<int64_t>{3, 3, 3}));

    DataLoader exact(ds, {.batch_size = 5, .drop_last = true});
    EXPECT_EQ(exact.size(), 2);
    DataLoader big(ds, {.batch_size = 32, .drop_last = true});
    EXPECT_EQ(big.size(), 0);
    EXPECT_EQ(big.begin(), big.end());

    TensorDataset empty(zeros({0, 2}), zeros({0}));
    DataLoader none(empty, {.batch_size = 4});
    EXPECT_EQ(none.size(), 0);
    int count = 0;
    for (const Example& b : none) count += static_cast<int>(b.input.size(0));
    EXPECT_EQ(count, 0);

    EXPECT_THROW(DataLoader(ds, {.batch_size = 0}), ValueError);
    EXPECT_THROW(DataLoader(ds, {.prefetch = -1}), ValueError);
}

TEST(DataLoader, SequentialOrderAndShapes) {
    auto ds = numbered(5);
    DataLoader loader(ds, {.batch_size = 2});
    std::vector<Example> batches;
    for (const Example& b : loader) batches.push_back(b);
    ASSERT_EQ(batches.size(), 3u);
    EXPECT_EQ(batches[0].input.shape(), (Shape{2, 2}));
    EXPECT_EQ(vf(batches[1].input), (std::vector<float>{2, 20, 3, 30}));
    EXPECT_EQ(vi(batches[2].target), (std::vector<int64_t>{4}));
}

TEST(DataLoader, ShuffleIsAFunctionOfSeedAndEpoch) {
    auto ds = numbered(50);
    DataLoader a(ds, {.batch_size = 8, .shuffle = true, .seed = 7});
    DataLoader b(ds, {.batch_size = 8, .shuffle = true, .seed = 7});
    DataLoader c(ds, {.batch_size = 8, .shuffle = true, .seed = 8});
    auto a0 = epoch_targets(a), a1 = epoch_targets(a);
    auto b0 = epoch_targets(b), b1 = epoch_targets(b);
    EXPECT_EQ(a0, b0);
    EXPECT_EQ(a1, b1);
    EXPECT_NE(a0, a1);                // each epoch reshuffles
    EXPECT_NE(a0, epoch_targets(c));  // another seed, another order
    EXPECT_EQ(a.epoch(), 2);
    a.set_epoch(1);
    EXPECT_EQ(epoch_targets(a), a1);
    a.set_epoch(0);
    EXPECT_EQ(epoch_targets(a), a0);
    EXPECT_EQ(a.order(1), a1);
    std::vector<int64_t> identity(50);
    for (int64_t i = 0; i < 50; ++i) identity[i] = i;
    EXPECT_NE(a0, identity);
    DataLoader plain(ds, {.batch_size = 8});
    EXPECT_EQ(epoch_targets(plain), identity);
    EXPECT_EQ(epoch_targets(plain), identity);
}

TEST(DataLoader, EverySampleOncePerEpoch) {
    auto ds = numbered(103);
    DataLoader loader(ds, {.batch_size = 10, .shuffle = true, .seed = 3});
    for (int epoch = 0; epoch < 3; ++epoch) {
        auto t = epoch_targets(loader);
        ASSERT_EQ(t.size(), 103u);
        std::sort(t.begin(), t.end());
        for (int64_t i = 0; i < 103; ++i) ASSERT_EQ(t[i], i);
    }
    // drop_last: 100 distinct samples, none repeated
    DataLoader drop(ds, {.batch_size = 10, .shuffle = true, .drop_last = true, .seed = 3});
    auto t = epoch_targets(drop);
    EXPECT_EQ(t.size(), 100u);
    EXPECT_EQ(std::set<int64_t>(t.begin(), t.end()).size(), 100u);
}

TEST(DataLoader, PrefetchOnAndOffGiveIdenticalBatches) {
    auto ds = std::make_shared<TensorDataset>(rand({37, 1, 4, 4}), arange(37));
    auto run = [&](int64_t prefetch) {
        DataLoader loader(
            ds, {.batch_size = 5,
                 .shuffle = true,
                 .seed = 11,
                 .prefetch = prefetch,
                 .transform = compose({random_crop(4, 1, 5), random_horizontal_flip(0.5, 6)})});
        std::vector<Tensor> out;
        for (int epoch = 0; epoch < 2; ++epoch)
            for (const Example& b : loader) {
                out.push_back(b.input);
                out.push_back(b.target);
            }
        return out;
    };
    auto sync = run(0), ahead = run(2), far = run(16);
    ASSERT_EQ(sync.size(), ahead.size());
    ASSERT_EQ(sync.size(), far.size());
    for (size_t i = 0; i < sync.size(); ++i) {
        EXPECT_EQ(sync[i].to_vector<double>(), ahead[i].to_vector<double>()) << i;
        EXPECT_EQ(sync[i].to_vector<double>(), far[i].to_vector<double>()) << i;
    }
}

TEST(DataLoader, TransformExceptionPropagates) {
    auto ds = numbered(20);
    for (int64_t prefetch : {0, 1, 3}) {
        int calls = 0;
        DataLoader loader(ds,
                          {.batch_size = 4, .prefetch = prefetch, .transform = [&calls](Example e) {
                               if (++calls == 3) throw ValueError("boom in batch 3");
                               return e;
                           }});
        int seen = 0;
        std::string msg;
        try {
            for (const Example& b : loader) {
                (void)b;
                ++seen;
            }
        } catch (const ValueError& e) {
            msg = e.what();
        }
        EXPECT_EQ(seen, 2) << "prefetch " << prefetch;  // the batches made before the error
        EXPECT_EQ(msg, "boom in batch 3") << "prefetch " << prefetch;
    }
}

TEST(DataLoader, DatasetExceptionOnFirstBatchPropagatesFromBegin) {
    class Broken : public Dataset {
      public:
        int64_t size() const override { return 4; }
        Example get(int64_t) const override { throw IndexError("broken dataset"); }
    };
    Broken ds;
    for (int64_t prefetch : {0, 2}) {
        DataLoader loader(ds, {.batch_size = 2, .prefetch = prefetch});
        EXPECT_CONTAINS(error_of<IndexError>([&] { loader.begin(); }), "broken dataset");
    }
}

TEST(DataLoader, StopMidEpochJoinsCleanly) {
    auto ds = numbered(1000);
    std::atomic<int> made{0};
    {
        DataLoader loader(ds, {.batch_size = 1, .prefetch = 4, .transform = [&made](Example e) {
                                   ++made;
                                   return e;
                               }});
        int n = 0;
        for (const Example& b : loader) {
            (void)b;
            if (++n == 3) break;
        }
        // Restarting mid-epoch ends the old worker and starts epoch 1 from its first batch.
        auto it = loader.begin();
        EXPECT_EQ(it->input.size(0), 1);
    }  // destroyed with a worker waiting on a full queue
    EXPECT_LT(made.load(), 1000);
}

TEST(DataLoader, StatefulTransformKeepsItsStateAcrossEpochs) {
    auto ds = numbered(4);
    int64_t calls = 0;
    DataLoader loader(ds,
                      {.batch_size = 2, .transform = [n = int64_t{0}, &calls](Example e) mutable {
                           e.target = full({e.target.size(0)}, n++, {.dtype = DType::int64});
                           calls = n;
                           return e;
                       }});
    EXPECT_EQ(epoch_targets(loader), (std::vector<int64_t>{0, 0, 1, 1}));
    EXPECT_EQ(epoch_targets(loader), (std::vector<int64_t>{2, 2, 3, 3}));
    EXPECT_EQ(calls, 4);
}

TEST(DataLoader, BatchesNeverRequireGrad) {
    Tensor w = ones({1}).requires_grad_();
    TensorDataset ds(randn({6, 3}).requires_grad_(), arange(6));
    for (int64_t prefetch : {0, 2}) {
        DataLoader loader(ds, {.batch_size = 3, .prefetch = prefetch, .transform = [w](Example e) {
                                   e.input = e.input * w;  // would record a graph with grad on
                                   return e;
                               }});
        for (const Example& b : loader) {
            EXPECT_FALSE(b.input.requires_grad());
            EXPECT_FALSE(b.target.requires_grad());
        }
    }
    EXPECT_TRUE(is_grad_enabled());
}

TEST(DataLoader, GenericDatasetAndSubset) {
    auto ds = std::make_shared<FilledDataset>(7);
    DataLoader loader(ds, {.batch_size = 3});
    std::vector<int64_t> t = epoch_targets(loader);
    EXPECT_EQ(t, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
    auto parts = random_split(numbered(9), {0.6666666666666666, 0.3333333333333334}, 1);
    DataLoader sub(parts[1], {.batch_size = 2});
    auto st = epoch_targets(sub);
    EXPECT_EQ(st, parts[1].indices());
}

// ---- IDX -------------------------------------------------------------------------------------

TEST(DataIdx, RoundTripPlainAndGzip) {
    TempDir dir;
    std::vector<int64_t> v(3 * 4 * 5);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>((i * 37) % 256);
    Tensor t = from_vector(v, {3, 4, 5});
    for (const char* name : {"a-idx3-ubyte", "a-idx3-ubyte.gz"}) {
        std::string p = dir.file(name);
        write_idx(p, t);
        Tensor r = read_idx(p);
        EXPECT_EQ(r.dtype(), DType::int64);
        EXPECT_EQ(r.shape(), (Shape{3, 4, 5}));
        EXPECT_EQ(vi(r), v);
        Tensor img = read_idx_images(p);
        EXPECT_EQ(img.dtype(), DType::float32);
        EXPECT_EQ(img.shape(), (Shape{3, 4, 5}));
        EXPECT_FLOAT_EQ(img.at<float>({0, 0, 1}), 37.0f / 255.0f);
        EXPECT_FLOAT_EQ(img.at<float>({0, 1, 2}), static_cast<float>(7 * 37 % 256) / 255.0f);
    }
    // .gz really is gzip, and the plain file is 4 + 3 * 4 header bytes + 60 data bytes.
    std::ifstream gz(dir.file("a-idx3-ubyte.gz"), std::ios::binary);
    EXPECT_EQ(gz.get(), 0x1f);
    EXPECT_EQ(gz.get(), 0x8b);
    EXPECT_EQ(fs::file_size(dir.file("a-idx3-ubyte")), 4u + 12u + 60u);

    Tensor labels = from_vector(std::vector<int64_t>{3, 1, 4, 1, 5});
    write_idx(dir.file("l.gz"), labels);
    EXPECT_EQ(vi(read_idx_labels(dir.file("l.gz"))), vi(labels));
}

TEST(DataIdx, RoundTripWideTypes) {
    TempDir dir;
    Tensor ints = from_vector(std::vector<int64_t>{-70000, 0, 1, 300, 2147483647}, {5});
    write_idx(dir.file("i"), ints);
    EXPECT_EQ(vi(read_idx(dir.file("i"))), vi(ints));
    EXPECT_EQ(vi(read_idx_labels(dir.file("i"))), vi(ints));
    Tensor f = from_vector(std::vector<float>{-1.5f, 0.25f, 3e8f, 1e-7f}, {2, 2});
    write_idx(dir.file("f.gz"), f);
    Tensor rf = read_idx(dir.file("f.gz"));
    EXPECT_EQ(rf.dtype(), DType::float32);
    EXPECT_EQ(vf(rf), vf(f));
    Tensor d = from_vector(std::vector<double>{1.0 / 3, -2e300}, {2});
    write_idx(dir.file("d"), d);
    EXPECT_EQ(read_idx(dir.file("d")).to_vector<double>(), d.to_vector<double>());
    EXPECT_CONTAINS(error_of<ValueError>([&] { read_idx_images(dir.file("f.gz")); }),
                    "images must be unsigned bytes");
    EXPECT_THROW(write_idx(dir.file("big"), from_vector(std::vector<int64_t>{1ll << 40})),
                 ValueError);
}

TEST(DataIdx, BadFilesAreRejectedNamingTheFile) {
    TempDir dir;
    struct Case {
        const char* name;
        std::vector<unsigned char> bytes;
        const char* what;
    };
    const std::vector<Case> cases = {
        {"empty", {}, "truncated header"},
        {"short_magic", {0, 0, 8}, "truncated header"},
        {"magic", {1, 2, 8, 1, 0, 0, 0, 1, 7}, "wrong magic number: got 0x01020801"},
        {"type", {0, 0, 0x07, 1, 0, 0, 0, 1, 7}, "unsupported type code: got 0x07"},
        {"ndims", {0, 0, 8, 0}, "unsupported number of dims: got 0"},
        {"short_dims", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0}, "truncated header"},
        {"truncated",
         {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5},
         "truncated data: header dims [2, 3] of unsigned byte need 6 bytes, got 5"},
        {"extra",
         {0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xAA},
         "data size disagrees with header dims: dims [1] of int32 need 4 bytes, got 5"},
    };
    for (const Case& c : cases) {
        std::string p = dir.file(c.name);
        write_bytes(p, c.bytes);
        std::string msg = error_of<ValueError>([&] { read_idx(p); });
        EXPECT_CONTAINS(msg, "read_idx: '" + p + "'");
        EXPECT_CONTAINS(msg, c.what);
    }
    // Bad content inside a gzip file is caught the same way; a cut-off gzip stream too.
    write_idx(dir.file("ok.gz"), arange(1000));
    auto size = fs::file_size(dir.file("ok.gz"));
    fs::resize_file(dir.file("ok.gz"), size / 2);
    std::string msg = error_of<ValueError>([&] { read_idx(dir.file("ok.gz")); });
    EXPECT_CONTAINS(msg, dir.file("ok.gz"));
    EXPECT_CONTAINS(msg, "gzip");

    EXPECT_CONTAINS(error_of<Error>([&] { read_idx(dir.file("absent")); }),
                    "read_idx: cannot open '" + dir.file("absent") + "'");
    EXPECT_CONTAINS(error_of<Error>([&] { read_idx(dir.path()); }), "it is a directory");
    // Labels must be 1-D, images at least 2-D.
    write_idx(dir.file("two_d"), zeros({2, 2}, {.dtype = DType::int64}));
    EXPECT_CONTAINS(error_of<ValueError>([&] { read_idx_labels(dir.file("two_d")); }),
                    "labels must have one dim");
    write_idx(dir.file("one_d"), zeros({2}, {.dtype = DType::int64}));
    EXPECT_CONTAINS(error_of<ValueError>([&] { read_idx_images(dir.file("one_d")); }),
                    "images need at least 2 dims");
}

TEST(DataIdx, ImageAndLabelCountsMustAgree) {
    TempDir dir;
    write_idx(dir.file("img.gz"), zeros({3, 2, 2}, {.dtype = DType::int64}));
    write_idx(dir.file("lbl.gz"), zeros({4}, {.dtype = DType::int64}));
    std::string msg =
        error_of<ValueError>([&] { read_idx_dataset(dir.file("img.gz"), dir.file("lbl.gz")); });
    EXPECT_CONTAINS(msg, "image and label counts differ");
    EXPECT_CONTAINS(msg, "3 images in '" + dir.file("img.gz") + "'");
    EXPECT_CONTAINS(msg, "4 labels in '" + dir.file("lbl.gz") + "'");
}

TEST(DataIdx, FashionMnistFromADirectory) {
    TempDir dir;
    Tensor images = randint(0, 256, {5, 28, 28});
    write_idx(dir.file("t10k-images-idx3-ubyte.gz"), images);
    write_idx(dir.file("t10k-labels-idx1-ubyte"), arange(5));  // plain works too
    FashionMNIST test(dir.path(), /*train=*/false);
    EXPECT_EQ(test.size(), 5);
    Example e = test.get(3);
    EXPECT_EQ(e.input.shape(), (Shape{1, 28, 28}));
    EXPECT_EQ(e.target.item<int64_t>(), 3);
    EXPECT_FLOAT_EQ(e.input.at<float>({0, 4, 5}),
                    static_cast<float>(images.at<int64_t>({3, 4, 5})) / 255.0f);
    EXPECT_EQ(fashion_mnist(dir.path(), false).inputs().shape(), (Shape{5, 1, 28, 28}));
    // The train split is absent here.
    EXPECT_CONTAINS(error_of<Error>([&] { FashionMNIST(dir.path(), true); }),
                    "train-images-idx3-ubyte");
}

TEST(DataIdx, FashionMnistMissingDirectorySaysHowToGetIt) {
    std::string msg = error_of<Error>([] { fashion_mnist("/nonexistent/fmnist"); });
    EXPECT_CONTAINS(msg, "'/nonexistent/fmnist' not found");
    EXPECT_CONTAINS(msg, "dataset-fashion-mnist");
    EXPECT_CONTAINS(msg, "sudo apt-get install dataset-fashion-mnist");
    EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST(DataFashionMnist, RealTestSplit) {
    if (!fs::is_directory(kFashionDir)) GTEST_SKIP() << kFashionDir << " is missing";
    FashionMNIST test(kFashionDir, /*train=*/false);
    ASSERT_EQ(test.size(), 10000);
    EXPECT_EQ(test.inputs().shape(), (Shape{10000, 1, 28, 28}));
    EXPECT_EQ(test.inputs().dtype(), DType::float32);
    EXPECT_EQ(test.targets().dtype(), DType::int64);
    std::map<int64_t, int> counts;
    for (int64_t y : vi(test.targets())) counts[y]++;
    ASSERT_EQ(counts.size(), 10u);
    EXPECT_EQ(counts.begin()->first, 0);
    EXPECT_EQ(counts.rbegin()->first, 9);
    for (auto [label, n] : counts) EXPECT_EQ(n, 1000) << label;  // the test split is balanced
    auto px = vf(test.inputs());
    auto [lo, hi] = std::minmax_element(px.begin(), px.end());
    EXPECT_EQ(*lo, 0.0f);
    EXPECT_EQ(*hi, 1.0f);
    EXPECT_EQ(FashionMNIST::classes().size(), 10u);

    DataLoader loader(test, {.batch_size = 256, .shuffle = true, .seed = 0});
    EXPECT_EQ(loader.size(), 40);
    auto it = loader.begin();
    EXPECT_EQ(it->input.shape(), (Shape{256, 1, 28, 28}));
    EXPECT_EQ(it->target.shape(), (Shape{256}));
}

// ---- CSV -------------------------------------------------------------------------------------

TEST(DataCsv, HeaderAutoDetection) {
    TempDir dir;
    write_text(dir.file("h.csv"), "a, \"b c\"\r\n1,2.5\r\n\r\n-3,4e2\r\n");
    Table t = read_csv(dir.file("h.csv"));
    EXPECT_EQ(t.columns, (std::vector<std::string>{"a", "b c"}));
    EXPECT_EQ(t.rows, 2);
    EXPECT_EQ(t.values, (std::vector<double>{1, 2.5, -3, 400}));
    EXPECT_EQ(t.column_index("b c"), 1);
    EXPECT_CONTAINS(error_of<ValueError>([&] { t.column_index("z"); }), "'a', 'b c'");
    Tensor x = t.to_tensor();
    EXPECT_EQ(x.shape(), (Shape{2, 2}));
    EXPECT_EQ(vf(x), (std::vector<float>{1, 2.5, -3, 400}));
    EXPECT_EQ(vf(t.to_tensor(DType::float32, 1, 1)), (std::vector<float>{2.5, 400}));

    write_text(dir.file("n.csv"), "1;2;3\n4;5;6\n");
    Table n = read_csv(dir.file("n.csv"), {.delimiter = ';'});
    EXPECT_EQ(n.columns, (std::vector<std::string>{"0", "1", "2"}));
    EXPECT_EQ(n.rows, 2);
    Table forced = read_csv(dir.file("n.csv"), {.header = true, .delimiter = ';'});
    EXPECT_EQ(forced.columns, (std::vector<std::string>{"1", "2", "3"}));
    EXPECT_EQ(forced.rows, 1);

    write_text(dir.file("ws.txt"), "  x\ty  z\n1 2\t 3\n  4   5 6  \n");
    Table ws = read_csv(dir.file("ws.txt"), {.delimiter = ' '});
    EXPECT_EQ(ws.columns, (std::vector<std::string>{"x", "y", "z"}));
    EXPECT_EQ(ws.values, (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

TEST(DataCsv, BadCellsNameFileLineAndColumn) {
    TempDir dir;
    const std::string p = dir.file("bad.csv");
    write_text(p, "a,b\n1,2\n3,x7\n");
    std::string msg = error_of<ValueError>([&] { read_csv(p); });
    EXPECT_CONTAINS(msg, p + ":3:2:");
    EXPECT_CONTAINS(msg, "column 2 ('b') is not a number: got 'x7'");

    write_text(p, "1,2\n3,4,5\n");
    msg = error_of<ValueError>([&] { read_csv(p); });
    EXPECT_CONTAINS(msg, p + ":2:3:");
    EXPECT_CONTAINS(msg, "wrong number of columns: got 3, expected 2");

    write_text(p, "a,b,c\n1,2\n");
    msg = error_of<ValueError>([&] { read_csv(p); });
    EXPECT_CONTAINS(msg, p + ":2:3:");
    EXPECT_CONTAINS(msg, "got 2, expected 3");

    write_text(p, "a,b,c\n1,,3\n");
    EXPECT_CONTAINS(error_of<ValueError>([&] { read_csv(p); }),
                    p + ":2:2: column 2 ('b') is empty");

    write_text(p, "name,1\n");
    EXPECT_CONTAINS(error_of<ValueError>([&] { read_csv(p, {.header = false}); }), "got 'name'");
    EXPECT_CONTAINS(error_of<Error>([&] { read_csv(dir.file("absent.csv")); }),
                    "read_csv: cannot open");
}

TEST(DataCsv, SklearnIris) {
    if (!fs::exists(kSklearnDir + "/iris.csv")) GTEST_SKIP() << "python3-sklearn is missing";
    TensorDataset iris = sklearn_csv("iris");
    EXPECT_EQ(iris.inputs().shape(), (Shape{150, 4}));
    EXPECT_EQ(iris.inputs().dtype(), DType::float32);
    EXPECT_EQ(iris.targets().dtype(), DType::int64);
    std::map<int64_t, int> counts;
    for (int64_t y : vi(iris.targets())) counts[y]++;
    EXPECT_EQ(counts, (std::map<int64_t, int>{{0, 50}, {1, 50}, {2, 50}}));
    EXPECT_FLOAT_EQ(iris.inputs().at<float>({0, 0}), 5.1f);
    EXPECT_FLOAT_EQ(iris.inputs().at<float>({149, 3}), 1.8f);
    // The raw table sees the "150,4,setosa,..." line as a header.
    Table raw = read_csv(kSklearnDir + "/iris.csv");
    EXPECT_EQ(raw.columns[2], "setosa");
    EXPECT_EQ(raw.rows, 150);
}

TEST(DataCsv, SklearnOtherSets) {
    if (!fs::is_directory(kSklearnDir)) GTEST_SKIP() << "python3-sklearn is missing";
    struct Want {
        const char* name;
        Shape x, y;
        DType ydt;
    };
    for (const Want& w : std::vector<Want>{
             {"wine", {178, 13}, {178}, DType::int64},
             {"breast_cancer", {569, 30}, {569}, DType::int64},
             {"digits", {1797, 64}, {1797}, DType::int64},
             {"diabetes", {442, 10}, {442}, DType::float32},
             {"linnerud", {20, 3}, {20, 3}, DType::float32},
             {"boston", {506, 13}, {506}, DType::float32},
         }) {
        TensorDataset ds = sklearn_csv(w.name);
        EXPECT_EQ(ds.inputs().shape(), w.x) << w.name;
        EXPECT_EQ(ds.targets().shape(), w.y) << w.name;
        EXPECT_EQ(ds.targets().dtype(), w.ydt) << w.name;
    }
    EXPECT_EQ(sklearn_csv("digits.csv.gz").targets().at<int64_t>({0}), 0);
    EXPECT_FLOAT_EQ(sklearn_csv("diabetes").targets().at<float>({0}), 151.0f);
    EXPECT_CONTAINS(error_of<ValueError>([] { sklearn_csv("mnist"); }), "unknown data set 'mnist'");
    EXPECT_CONTAINS(error_of<Error>([] { sklearn_csv("iris", "/nonexistent"); }),
                    "python3-sklearn");
}

// ---- transforms ------------------------------------------------------------------------------

TEST(DataTransforms, NormalizePerChannel) {
    // [C=2, H=1, W=2]
    Tensor x = from_vector(std::vector<float>{1, 3, 6, 10}, {2, 1, 2});
    Tensor y = normalize(x, {1, 2}, {2, 4});
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_EQ(vf(y), (std::vector<float>{0, 1, 1, 2}));
    // a batch [N=2, C=2, 1, 2], channel means apply per image
    Tensor b = from_vector(std::vector<float>{1, 3, 6, 10, 3, 5, 10, 14}, {2, 2, 1, 2});
    EXPECT_EQ(vf(normalize(b, {1, 2}, {2, 4})), (std::vector<float>{0, 1, 1, 2, 1, 2, 2, 3}));
    // one shared value; integer input becomes float32; [H, W] is one channel
    Tensor i = from_vector(std::vector<int64_t>{0, 255}, {1, 2});
    Tensor ni = normalize(i, {127.5}, {127.5});
    EXPECT_EQ(ni.dtype(), DType::float32);
    EXPECT_EQ(vf(ni), (std::vector<float>{-1, 1}));
    EXPECT_EQ(normalize(x.to(DType::float64), {0}, {1}).dtype(), DType::float64);
    EXPECT_CONTAINS(error_of<ValueError>([&] {
                        normalize(x, {1, 2, 3}, {1});
                    }),
                    "normalize: mean has 3 values, expected 1 or 2");
    EXPECT_THROW(normalize(x, {0}, {0}), ValueError);
    EXPECT_THROW(normalize(zeros({3}), {0}, {1}), ShapeError);
}

TEST(DataTransforms, RandomCropPadsWithZeros) {
    // [C=2, 3, 3] with values 1..18: every output pixel is 0 (padding) or the source pixel at a
    // single (top, left) offset, drawn as next_below(H+2p-h+1) then next_below(W+2p-w+1).
    std::vector<float> v(18);
    for (int i = 0; i < 18; ++i) v[i] = static_cast<float>(i + 1);
    Tensor x = from_vector(v, {2, 3, 3});
    for (uint64_t seed = 0; seed < 20; ++seed) {
        Generator g(seed), replay(seed);
        Tensor y = random_crop(x, 3, 2, /*padding=*/2, g);
        ASSERT_EQ(y.shape(), (Shape{2, 3, 2}));
        const auto top = static_cast<int64_t>(replay.next_below(3 + 4 - 3 + 1));
        const auto left = static_cast<int64_t>(replay.next_below(3 + 4 - 2 + 1));
        for (int64_t c = 0; c < 2; ++c)
            for (int64_t r = 0; r < 3; ++r)
                for (int64_t q = 0; q < 2; ++q) {
                    int64_t sr = r + top - 2, sq = q + left - 2;
                    float want =
                        (sr >= 0 && sr < 3 && sq >= 0 && sq < 3) ? x.at<float>({c, sr, sq}) : 0.0f;
                    ASSERT_EQ(y.at<float>({c, r, q}), want) << seed << " " << c << r << q;
                }
    }
    // No padding and the full size: identity.
    Generator g(1);
    EXPECT_EQ(vf(random_crop(x, 3, 3, 0, g)), v);
    // A batch draws one window per image, so images differ; the seed fixes them.
    Tensor batch = ones({64, 1, 4, 4});
    Generator g1(9), g2(9);
    Tensor c1 = random_crop(batch, 4, 4, 2, g1), c2 = random_crop(batch, 4, 4, 2, g2);
    EXPECT_EQ(vf(c1), vf(c2));
    std::set<float> sums;
    for (int64_t n = 0; n < 64; ++n) sums.insert(c1.select(0, n).sum().item<float>());
    EXPECT_GT(sums.size(), 3u);
    EXPECT_CONTAINS(error_of<ValueError>([&] { random_crop(x, 8, 8, 1, g); }),
                    "larger than the padded image 5x5");
    // Integer images keep their dtype.
    EXPECT_EQ(random_crop(arange(9).reshape({3, 3}), 2, 2, 0, g).dtype(), DType::int64);
}

TEST(DataTransforms, RandomHorizontalFlip) {
    Tensor x = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {1, 2, 3});
    Generator g(0);
    EXPECT_EQ(vf(random_horizontal_flip(x, 1.0, g)), (std::vector<float>{3, 2, 1, 6, 5, 4}));
    EXPECT_EQ(vf(random_horizontal_flip(x, 0.0, g)), vf(x));
    // p = 0.5 on a batch: per-image decisions, fixed by the seed.
    Tensor batch = x.unsqueeze(0).expand({200, 1, 2, 3}).contiguous();
    Generator a(4), b(4);
    Tensor fa = random_horizontal_flip(batch, 0.5, a), fb = random_horizontal_flip(batch, 0.5, b);
    EXPECT_EQ(vf(fa), vf(fb));
    int flipped = 0;
    for (int64_t n = 0; n < 200; ++n) flipped += fa.at<float>({n, 0, 0, 0}) == 3.0f;
    EXPECT_GT(flipped, 70);
    EXPECT_LT(flipped, 130);
    EXPECT_THROW(random_horizontal_flip(x, 1.5, g), ValueError);
}

TEST(DataTransforms, FactoriesComposeOnExamples) {
    Tensor x = from_vector(std::vector<float>{1, 2, 3, 4}, {1, 2, 2});
    Transform t = compose({random_horizontal_flip(1.0, 0), normalize({1}, {2})});
    Example e = t({x, scalar_tensor(int64_t{7})});
    EXPECT_EQ(vf(e.input), (std::vector<float>{0.5, 0, 1.5, 1}));
    EXPECT_EQ(e.target.item<int64_t>(), 7);
    // Copies of a random Transform share one generator: the sequence continues.
    Transform flip = random_horizontal_flip(0.5, 3);
    Transform copy = flip;
    Generator g(3);
    Tensor batch = x.unsqueeze(0).expand({50, 1, 2, 2}).contiguous();
    Tensor first = random_horizontal_flip(batch, 0.5, g);
    Tensor second = random_horizontal_flip(batch, 0.5, g);
    EXPECT_EQ(vf(flip({batch, Tensor()}).input), vf(first));
    EXPECT_EQ(vf(copy({batch, Tensor()}).input), vf(second));
}
