// Shape and indexing ops: cat / stack / split / chunk, index_select / index_add / gather /
// scatter_add, embedding, one_hot, pad, repeat, flip, tril / triu.
//
// Forwards call backend kernels on raw views (make_view: no autograd) and record one node per
// op; backwards are written in differentiable soma ops so double backward works. Integer index
// tensors are int64 and never get a gradient. Index values are bounds-checked on the host before
// any kernel runs, so a bad index raises IndexError naming it instead of reading out of bounds.
#include <algorithm>

#include "ops/op_util.h"

namespace soma {

// Differentiable out-of-place index_add (not in ops.h; other op files may declare and use it):
// base with src[..., i, ...] added at base[..., index[i], ...] along dim.
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);

namespace {

using Grads = std::vector<Tensor>;

// A 0-dim tensor seen as shape [1] (PyTorch's "ensure nonempty dim" for indexing ops). No
// autograd: only for kernels and checks.
Tensor as_nd(const Tensor& t) {
    if (t.dim() > 0) return t;
    return make_view(t, {1}, {1}, t.storage_offset());
}

// Host copy of an index tensor's values, for bounds checks.
std::vector<int64_t> index_values(const Tensor& index) {
    NoGradGuard ng;
    return index.detach().to_vector<int64_t>();
}

void check_index_dtype(const Tensor& index, const char* op) {
    SOMA_CHECK_DTYPE(index.dtype() == DType::int64, op, ": index must be an int64 tensor, got ",
                     index.dtype(), " with shape ", index.shape(),
                     ". Convert with .to(soma::DType::int64).");
}

// Every value of `index` must lie in [0, size).
void check_index_range(const Tensor& index, int64_t size, int64_t dim, const Shape& x_shape,
                       const char* op) {
    for (int64_t v : index_values(index))
        SOMA_CHECK_INDEX(v >= 0 && v < size, op, ": index ", v, " is out of bounds for dim ", dim,
                         " with size ", size, ": input shape ", x_shape,
                         ", expected indices in [0, ", size, ")");
}

// A fresh contiguous copy of t (no autograd).
Tensor raw_copy(const Tensor& t) {
    Tensor out = make_tensor(t.shape(), t.dtype(), t.device());
    if (t.numel() > 0) backend(t).copy(t, out);
    return out;
}

// The geometry of an indexing op's sub-box: a view of t of `sizes` starting at `starts` (no
// autograd).
Tensor box_view(const Tensor& t, const Shape& starts, const Shape& sizes) {
    int64_t off = t.storage_offset();
    for (size_t d = 0; d < starts.size(); ++d) off += starts[d] * t.strides()[d];
    return make_view(t, sizes, t.strides(), off);
}

// Checks shared by gather and scatter_add: same number of dims (0-dim counts as 1) and index no
// larger than `x` outside `dim` (and no larger than `src` anywhere).
void check_scatter_gather_shapes(const Tensor& x, int64_t dim, const Tensor& index,
                                 const Tensor* src, const char* op) {
    Tensor xn = as_nd(x), in = as_nd(index);
    SOMA_CHECK_SHAPE(in.dim() == xn.dim(), op,
                     ": index must have the same number of dims as the input: got index shape ",
                     index.shape(), ", expected ", xn.dim(), " dims like the input shape ",
                     x.shape());
    for (int64_t d = 0; d < xn.dim(); ++d)
        SOMA_CHECK_SHAPE(d == dim || in.size(d) <= xn.size(d), op, ": index shape ", index.shape(),
                         " is larger than the input shape ", x.shape(), " at dim ", d, ": got ",
                         in.size(d), ", expected at most ", xn.size(d), " (only dim ", dim,
                         " may be larger)");
    if (!src) return;
    Tensor sn = as_nd(*src);
    SOMA_CHECK_SHAPE(sn.dim() == in.dim(), op,
                     ": src must have the same number of dims as index: got src shape ",
                     src->shape(), ", index shape ", index.shape());
    for (int64_t d = 0; d < sn.dim(); ++d)
        SOMA_CHECK_SHAPE(in.size(d) <= sn.size(d), op, ": index shape ", index.shape(),
                         " is larger than the src shape ", src->shape(), " at dim ", d, ": got ",
                         in.size(d), ", expected at most ", sn.size(d));
}

// 0-pads (or reshapes) a gradient computed for index's extent out to src's shape: the src
// elements outside index's box were never scattered and get zero gradient.
Tensor zero_extend(const Tensor& g, const Shape& shape) {
    if (g.numel() == shape_numel(shape)) return g.reshape(shape);
    std::vector<int64_t> pads;
    int64_t n = g.dim();
    for (int64_t d = n - 1; d >= 0; --d) {
        pads.push_back(0);
        pads.push_back(shape[d] - g.size(d));
    }
    return pad(g, pads, 0.0);
}

// Bool [R, C] mask of the elements tril (lower) / triu keeps: col - row <= k (>= k for triu).
Tensor triangle_mask(const Tensor& x, int64_t k, bool lower, const char* op) {
    SOMA_CHECK_SHAPE(x.dim() >= 2, op, ": input must have at least 2 dims: got shape ", x.shape(),
                     ", expected [..., rows, cols]");
    TensorOptions io{.dtype = DType::int64, .device = x.device()};
    Tensor rows = arange(0, x.size(-2), 1, io).unsqueeze(1);
    Tensor cols = arange(0, x.size(-1), 1, io).unsqueeze(0);
    Tensor diff = cols - rows;  // [R, C]
    return lower ? le(diff, k) : ge(diff, k);
}

Tensor triangle(const Tensor& x, int64_t k, bool lower, const char* op) {
    check_defined(x, op);
    Tensor out;
    {
        NoGradGuard ng;
        Tensor mask = triangle_mask(x, k, lower, op);
        out = where(mask, x.detach(), zeros({}, {.dtype = x.dtype(), .device = x.device()}));
    }
    return record(op, out, {x},
                  [k, lower](const Tensor& g) { return Grads{lower ? tril(g, k) : triu(g, k)}; });
}

}  // namespace

// ---- cat, stack, split, chunk ----------------------------------------------------------------

// cat: y = [x0; x1; ...] along dim;  dxi = dy.narrow(dim, offset_i, size_i)
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
    SOMA_CHECK_VALUE(!tensors.empty(), "cat: expected a non-empty list of tensors");
    for (const Tensor& t : tensors) {
        check_defined(t, "cat");
        check_same_device(tensors[0], t, "cat");
    }
    DType rt = tensors[0].dtype();
    for (const Tensor& t : tensors) rt = promote_types(rt, t.dtype());
    // PyTorch's legacy rule: 1-D empty tensors are skipped whatever the other shapes are.
    auto skipped = [](const Tensor& t) { return t.dim() == 1 && t.size(0) == 0; };
    int64_t ref = -1;
    for (size_t i = 0; i < tensors.size(); ++i) {
        if (skipped(tensors[i])) continue;
        SOMA_CHECK_SHAPE(tensors[i].dim() > 0, "cat: zero-dimensional tensor (at position ", i,
                         ") cannot be concatenated. Use stack(), or unsqueeze(0) first.");
        if (ref < 0) ref = static_cast<int64_t>(i);
    }
    size_t n = tensors.size();
    if (ref < 0) {  // all skipped: an empty [0] result
        Tensor out = make_tensor({0}, rt, tensors[0].device());
        return record("cat", out, tensors, [n](const Tensor& g) { return Grads(n, g); });
    }
    const Tensor& r = tensors[ref];
    int64_t d = wrap_dim(dim, r.dim(), "cat");
    Shape os = r.shape();
    os[d] = 0;
    for (size_t i = 0; i < n; ++i) {
        const Tensor& t = tensors[i];
        if (skipped(t)) continue;
        SOMA_CHECK_SHAPE(t.dim() == r.dim(), "cat: tensors must have the same number of dims: got ",
                         t.shape(), " (tensor ", i, "), expected ", r.dim(), " dims like ",
                         r.shape(), " (tensor ", ref, ")");
        for (int64_t k = 0; k < r.dim(); ++k)
            SOMA_CHECK_SHAPE(k == d || t.size(k) == r.size(k),
                             "cat: sizes of tensors must match except in dim ", d, ": got ",
                             t.shape(), " (tensor ", i, "), expected size ", r.size(k), " at dim ",
                             k, " like ", r.shape(), " (tensor ", ref, ")");
        os[d] += t.size(d);
    }
    Tensor out = make_tensor(os, rt, r.device());
    std::vector<int64_t> offsets(n, -1);
    int64_t off = 0;
    for (size_t i = 0; i < n; ++i) {
        const Tensor& t = tensors[i];
        if (skipped(t)) continue;
        offsets[i] = off;
        if (t.numel() > 0) {
            Shape start(os.size(), 0);
            start[d] = off;
            backend(out).copy(t, box_view(out, start, t.shape()));
        }
        off += t.size(d);
    }
    std::vector<int64_t> sizes(n, 0);
    for (size_t i = 0; i < n; ++i)
        if (offsets[i] >= 0) sizes[i] = tensors[i].size(d);
    return record("cat", out, tensors, [d, offsets, sizes](const Tensor& g) {
        Grads gs(offsets.size());
        for (size_t i = 0; i < offsets.size(); ++i)
            if (offsets[i] >= 0) gs[i] = g.narrow(d, offsets[i], sizes[i]);
        return gs;
    });
}

// stack: y = cat([x0.unsqueeze(dim), x1.unsqueeze(dim), ...], dim);  dxi = dy.select(dim, i)
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
    SOMA_CHECK_VALUE(!tensors.empty(), "stack: expected a non-empty list of tensors");
    for (size_t i = 0; i < tensors.size(); ++i) {
        check_defined(tensors[i], "stack");
        SOMA_CHECK_SHAPE(tensors[i].shape() == tensors[0].shape(),
                         "stack: expects each tensor to be equal size: got ", tensors[i].shape(),
                         " at entry ", i, ", expected ", tensors[0].shape(), " as at entry 0");
    }
    int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
    std::vector<Tensor> parts;
    parts.reserve(tensors.size());
    for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(d));
    return cat(parts, d);
}

// split: views x.narrow(dim, i * split_size, split_size); the last one may be shorter.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
    check_defined(x, "split");
    SOMA_CHECK_SHAPE(x.dim() > 0, "split: expects at least a 1-dimensional tensor, got shape ",
                     x.shape());
    SOMA_CHECK_VALUE(split_size >= 0, "split: split_size must be non-negative, got ", split_size);
    int64_t d = wrap_dim(dim, x.dim(), "split");
    int64_t n = x.size(d);
    SOMA_CHECK_VALUE(split_size > 0 || n == 0,
                     "split: split_size can only be 0 if the dimension size is 0: got size ", n,
                     " at dim ", d, " (shape ", x.shape(), ")");
    int64_t parts = split_size == 0 ? 1 : std::max<int64_t>((n + split_size - 1) / split_size, 1);
    std::vector<Tensor> out;
    out.reserve(static_cast<size_t>(parts));
    for (int64_t i = 0; i < parts; ++i) {
        int64_t start = i * split_size;
        int64_t len = i < parts - 1 ? split_size : n - start;
        out.push_back(x.narrow(d, start, len));
    }
    return out;
}

// split with sizes: consecutive views of the given lengths, which must sum to the dim's size.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
    check_defined(x, "split");
    SOMA_CHECK_SHAPE(x.dim() > 0, "split: expects at least a 1-dimensional tensor, got shape ",
                     x.shape());
    int64_t d = wrap_dim(dim, x.dim(), "split");
    int64_t total = 0;
    for (int64_t s : sizes) {
        SOMA_CHECK_VALUE(s >= 0, "split: split sizes must be non-negative, got ", sizes);
        total += s;
    }
    SOMA_CHECK_VALUE(total == x.size(d), "split: split sizes must sum to the size of dim ", d,
                     ": got ", sizes, " (sum ", total, "), expected a sum of ", x.size(d),
                     " (shape ", x.shape(), ")");
    std::vector<Tensor> out;
    out.reserve(sizes.size());
    int64_t start = 0;
    for (int64_t s : sizes) {
        out.push_back(x.narrow(d, start, s));
        start += s;
    }
    return out;
}

// chunk: split into `chunks` views of ceil(size / chunks) (fewer when that covers the dim).
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
    check_defined(x, "chunk");
    SOMA_CHECK_SHAPE(x.dim() > 0, "chunk: expects at least a 1-dimensional tensor, got shape ",
                     x.shape());
    SOMA_CHECK_VALUE(chunks > 0, "chunk: chunks must be greater than 0, got ", chunks);
    int64_t d = wrap_dim(dim, x.dim(), "chunk");
    int64_t n = x.size(d);
    int64_t size = (n + chunks - 1) / chunks;
    // An empty dim gives `chunks` empty views (split would give one).
    if (n == 0) return split(x, std::vector<int64_t>(static_cast<size_t>(chunks), 0), d);
    return split(x, size, d);
}

// ---- indexing --------------------------------------------------------------------------------

// index_add: y = base; y[..., index[i], ...] += src[..., i, ...] along dim;
//            dbase = dy, dsrc = index_select(dy, dim, index)
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
    const char* op = "index_add";
    check_defined(base, op);
    check_defined(index, op);
    check_defined(src, op);
    check_same_device(base, index, op);
    check_same_device(base, src, op);
    check_index_dtype(index, op);
    SOMA_CHECK_SHAPE(index.dim() <= 1, op, ": index must be a vector (1-D): got shape ",
                     index.shape());
    SOMA_CHECK_DTYPE(src.dtype() == base.dtype(), op,
                     ": src dtype must equal the input dtype: got ", src.dtype(), ", expected ",
                     base.dtype());
    int64_t d = wrap_dim(dim, base.dim(), op);
    Tensor bn = as_nd(base), sn = as_nd(src);
    Shape want = bn.shape();
    want[d] = index.numel();
    SOMA_CHECK_SHAPE(sn.shape() == want, op, ": src has the wrong shape: got ", src.shape(),
                     ", expected ", want, " (input shape ", base.shape(), " with dim ", d,
                     " replaced by the index length ", index.numel(), ")");
    check_index_range(index, bn.size(d), d, base.shape(), op);
    Tensor out = raw_copy(base);
    if (src.numel() > 0) backend(base).index_add(as_nd(out), d, as_nd(index), sn);
    bool src_grad = src.requires_grad();
    return record(op, out, {base, src},
                  [d, index, src_grad](const Tensor& g) {
                      return Grads{g, src_grad ? index_select(g, d, index) : Tensor()};
                  },
                  {index});
}

// index_select: y = x[..., index, ...] along dim;  dx = index_add(zeros_like(x), dim, index, dy)
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
    const char* op = "index_select";
    check_defined(x, op);
    check_defined(index, op);
    check_same_device(x, index, op);
    check_index_dtype(index, op);
    SOMA_CHECK_SHAPE(index.dim() <= 1, op, ": index must be a vector (1-D): got shape ",
                     index.shape());
    int64_t d = wrap_dim(dim, x.dim(), op);
    Tensor xn = as_nd(x);
    check_index_range(index, xn.size(d), d, x.shape(), op);
    Shape os = x.shape();
    if (x.dim() > 0)
        os[d] = index.numel();
    else
        SOMA_CHECK_INDEX(index.numel() == 1, op, ": a 0-dim input takes exactly one index: got ",
                         index.numel());
    Tensor out = make_tensor(os, x.dtype(), x.device());
    if (out.numel() > 0) backend(x).index_select(xn, d, as_nd(index), as_nd(out));
    Shape xs = x.shape();
    return record(op, out, {x},
                  [xs, d, index](const Tensor& g) {
                      return Grads{index_add(zeros(xs, {.dtype = g.dtype(), .device = g.device()}),
                                             d, index, g)};
                  },
                  {index});
}

// gather: y[i][j] = x[i][index[i][j]] (dim 1);  dx = scatter_add(zeros_like(x), dim, index, dy)
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
    const char* op = "gather";
    check_defined(x, op);
    check_defined(index, op);
    check_same_device(x, index, op);
    int64_t d = wrap_dim(dim, x.dim(), op);
    Tensor out = make_tensor(index.shape(), x.dtype(), x.device());
    if (index.numel() > 0) {  // as PyTorch, an empty index is not checked
        check_index_dtype(index, op);
        check_scatter_gather_shapes(x, d, index, nullptr, op);
        check_index_range(index, as_nd(x).size(d), d, x.shape(), op);
        backend(x).gather(as_nd(x), d, as_nd(index), as_nd(out));
    }
    Shape xs = x.shape();
    return record(op, out, {x},
                  [xs, d, index](const Tensor& g) {
                      return Grads{scatter_add(
                          zeros(xs, {.dtype = g.dtype(), .device = g.device()}), d, index, g)};
                  },
                  {index});
}

// scatter_add: y = x; y[i][index[i][j]] += src[i][j] (dim 1);
//              dx = dy, dsrc = gather(dy, dim, index) (zero outside index's extent)
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
    const char* op = "scatter_add";
    check_defined(x, op);
    check_defined(index, op);
    check_defined(src, op);
    check_same_device(x, index, op);
    check_same_device(x, src, op);
    int64_t d = wrap_dim(dim, x.dim(), op);
    SOMA_CHECK_DTYPE(src.dtype() == x.dtype(), op, ": src dtype must equal the input dtype: got ",
                     src.dtype(), ", expected ", x.dtype());
    Tensor out = raw_copy(x);
    bool empty = index.numel() == 0;
    if (!empty) {
        check_index_dtype(index, op);
        check_scatter_gather_shapes(x, d, index, &src, op);
        check_index_range(index, as_nd(x).size(d), d, x.shape(), op);
        backend(x).scatter_add(as_nd(out), d, as_nd(index), as_nd(src));
    }
    Shape ss = src.shape();
    bool src_grad = src.requires_grad();
    return record(op, out, {x, src},
                  [d, index, ss, empty, src_grad](const Tensor& g) {
                      if (!src_grad) return Grads{g, Tensor()};
                      Tensor gs = empty ? zeros(ss, {.dtype = g.dtype(), .device = g.device()})
                                        : zero_extend(gather(g, d, index), ss);
                      return Grads{g, gs};
                  },
                  {index});
}

// embedding: y[..., :] = weight[indices[...], :];
//            dweight = index_add(zeros, 0, indices, dy rows), rows at padding_idx get none
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
    const char* op = "embedding";
    check_defined(weight, op);
    check_defined(indices, op);
    check_same_device(weight, indices, op);
    SOMA_CHECK_SHAPE(weight.dim() == 2, op,
                     ": weight must be 2-D [num_embeddings, embedding_dim]: got shape ",
                     weight.shape());
    SOMA_CHECK_DTYPE(indices.dtype() == DType::int64, op, ": indices must be an int64 tensor, got ",
                     indices.dtype(), " with shape ", indices.shape(),
                     ". Convert with .to(soma::DType::int64).");
    int64_t v = weight.size(0), dm = weight.size(1);
    SOMA_CHECK_VALUE(padding_idx < v, op, ": padding_idx must be within num_embeddings: got ",
                     padding_idx, ", expected < ", v, " (negative means no padding)");
    for (int64_t i : index_values(indices))
        SOMA_CHECK_INDEX(i >= 0 && i < v, op, ": index ", i, " is out of range for num_embeddings ",
                         v, " (weight shape ", weight.shape(), "): expected indices in [0, ", v,
                         ")");
    Tensor flat = indices.detach().reshape({-1});
    Tensor rows = make_tensor({flat.numel(), dm}, weight.dtype(), weight.device());
    if (rows.numel() > 0) backend(weight).index_select(weight, 0, flat, rows);
    Shape os = indices.shape();
    os.push_back(dm);
    Tensor out = make_view(rows, os, contiguous_strides(os), 0);
    out = record(op, out, {weight},
                 [v, dm, flat, padding_idx](const Tensor& g) {
                     Tensor g2 = g.reshape({-1, dm});
                     if (padding_idx >= 0)
                         g2 = masked_fill(g2, eq(flat, padding_idx).unsqueeze(1), 0);
                     return Grads{index_add(
                         zeros({v, dm}, {.dtype = g.dtype(), .device = g.device()}), 0, flat, g2)};
                 },
                 {flat});
    // What the rows are, for linear()'s embedding fold (core/tensor_impl.h, GatherSource).
    if (is_floating(weight.dtype()) && flat.numel() > 0) {
        auto gs = std::make_shared<GatherSource>();
        gs->table = weight;
        gs->index = flat;
        gs->padding_idx = padding_idx;
        gs->table_version = weight.impl()->storage->version;
        gs->index_version = flat.impl()->storage->version;
        gs->rows_version = rows.impl()->storage->version;
        gs->node = out.impl()->grad_fn;
        rows.impl()->storage->gathered = std::move(gs);
    }
    return out;
}

// one_hot: y[..., c] = (indices[...] == c), int64; no gradient.
Tensor one_hot(const Tensor& indices, int64_t num_classes) {
    const char* op = "one_hot";
    check_defined(indices, op);
    SOMA_CHECK_DTYPE(indices.dtype() == DType::int64, op,
                     ": indices must be an int64 tensor of class indices, got ", indices.dtype(),
                     " with shape ", indices.shape());
    Shape os = indices.shape();
    if (indices.numel() == 0) {
        SOMA_CHECK_VALUE(num_classes > 0, op,
                         ": can not infer the number of classes from an empty tensor (shape ",
                         indices.shape(), "): got num_classes ", num_classes,
                         ", expected > 0. Pass num_classes.");
        os.push_back(num_classes);
        return zeros(os, {.dtype = DType::int64, .device = indices.device()});
    }
    auto vals = index_values(indices);
    auto [lo, hi] = std::minmax_element(vals.begin(), vals.end());
    SOMA_CHECK_VALUE(*lo >= 0, op, ": class values must be non-negative: got ", *lo);
    if (num_classes == -1)
        num_classes = *hi + 1;
    else
        SOMA_CHECK_VALUE(*hi < num_classes, op,
                         ": class values must be smaller than num_classes: got class ", *hi,
                         ", expected < ", num_classes);
    NoGradGuard ng;
    Tensor classes = arange(0, num_classes, 1, {.dtype = DType::int64, .device = indices.device()});
    return cast(eq(indices.detach().unsqueeze(-1), classes), DType::int64);
}

// ---- padding, tiling, flipping, triangles ----------------------------------------------------

// pad: y = x placed at offset lo_d inside a `value`-filled tensor (negative pads crop);
//      dx = pad(dy, -pads)  (the matching slice of dy; cropped elements get 0)
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
    const char* op = "pad";
    check_defined(x, op);
    int64_t np = static_cast<int64_t>(pads.size());
    SOMA_CHECK_VALUE(np % 2 == 0, op, ": padding length must be divisible by 2: got ", np,
                     " values ", pads);
    SOMA_CHECK_VALUE(np / 2 <= x.dim(), op, ": padding length too large: got ", np, " values ",
                     pads, " for a tensor of shape ", x.shape(), ", expected at most ", 2 * x.dim(),
                     " (two per dim, last dim first)");
    int64_t nd = x.dim();
    Shape os = x.shape(), src_start(nd, 0), dst_start(nd, 0), len = x.shape();
    bool overlap = true;
    for (int64_t i = 0; i < np / 2; ++i) {
        int64_t d = nd - 1 - i, lo = pads[2 * i], hi = pads[2 * i + 1], s = x.size(d);
        int64_t n = s + lo + hi;
        SOMA_CHECK_SHAPE(n >= 0, op, ": the input size ", s, " at dim ", d, " plus padding (", lo,
                         ", ", hi, ") gives a negative output size ", n, " (input shape ",
                         x.shape(), ")");
        os[d] = n;
        src_start[d] = std::max<int64_t>(0, -lo);
        dst_start[d] = std::max<int64_t>(0, lo);
        len[d] = std::max<int64_t>(0, std::min(s - src_start[d], n - dst_start[d]));
        if (len[d] == 0) overlap = false;
    }
    Tensor out = full(os, value, {.dtype = x.dtype(), .device = x.device()});
    if (overlap && x.numel() > 0)
        backend(x).copy(box_view(x, src_start, len), box_view(out, dst_start, len));
    std::vector<int64_t> neg(pads.size());
    for (size_t i = 0; i < pads.size(); ++i) neg[i] = -pads[i];
    return record(op, out, {x}, [neg](const Tensor& g) { return Grads{pad(g, neg, 0.0)}; });
}

// repeat: y = x tiled r_d times along each dim (x gets leading 1s up to repeats.size() dims);
//         dx = Σ over the tiles: dy.reshape([r0, s0, r1, s1, ...]).sum(r dims)
Tensor repeat(const Tensor& x, const Shape& repeats) {
    const char* op = "repeat";
    check_defined(x, op);
    int64_t nr = static_cast<int64_t>(repeats.size()), nd = x.dim();
    SOMA_CHECK_VALUE(nr >= nd, op,
                     ": the number of repeats can not be smaller than the number of dims: got ", nr,
                     " repeats ", repeats, ", expected at least ", nd, " for shape ", x.shape());
    for (int64_t r : repeats)
        SOMA_CHECK_VALUE(r >= 0, op, ": repeats must be non-negative: got ", repeats);
    Shape xs(static_cast<size_t>(nr), 1), os(static_cast<size_t>(nr));
    for (int64_t i = 0; i < nd; ++i) xs[nr - nd + i] = x.size(i);
    for (int64_t i = 0; i < nr; ++i) os[i] = xs[i] * repeats[i];
    Tensor out;
    if (shape_numel(os) == 0) {
        out = make_tensor(os, x.dtype(), x.device());
    } else {
        // One dim at a time: cur [P, s, Q] -> [P, r, s, Q] by a broadcast copy (each step at
        // least doubles the size, so the copies total under twice the output).
        Tensor cur = x.is_contiguous() ? x : raw_copy(x);
        cur = make_view(cur, xs, contiguous_strides(xs), cur.storage_offset());
        for (int64_t i = 0; i < nr; ++i) {
            int64_t r = repeats[i];
            if (r == 1) continue;
            Shape cs = cur.shape();
            int64_t p = 1, q = 1, s = cs[i];
            for (int64_t k = 0; k < i; ++k) p *= cs[k];
            for (int64_t k = i + 1; k < nr; ++k) q *= cs[k];
            cs[i] = r * s;
            Tensor next = make_tensor(cs, x.dtype(), x.device());
            backend(x).copy(make_view(cur, {p, r, s, q}, {s * q, 0, q, 1}, cur.storage_offset()),
                            make_view(next, {p, r, s, q}, {r * s * q, s * q, q, 1}, 0));
            cur = next;
        }
        out = cur.shares_storage(x) ? raw_copy(cur) : cur;
    }
    Shape in_shape = x.shape();
    return record(op, out, {x}, [in_shape, xs, repeats](const Tensor& g) {
        if (g.numel() == 0)
            return Grads{zeros(in_shape, {.dtype = g.dtype(), .device = g.device()})};
        Tensor cur = g;
        int64_t nr = static_cast<int64_t>(xs.size());
        for (int64_t i = 0; i < nr; ++i) {
            int64_t r = repeats[i];
            if (r == 1) continue;
            Shape cs = cur.shape();
            int64_t p = 1, q = 1, s = xs[i];
            for (int64_t k = 0; k < i; ++k) p *= cs[k];
            for (int64_t k = i + 1; k < nr; ++k) q *= cs[k];
            cs[i] = s;
            cur = cur.reshape({p, r, s, q}).sum({1}).reshape(cs);
        }
        return Grads{cur.reshape(in_shape)};
    });
}

// flip: y = x reversed along dims;  dx = flip(dy, dims)
Tensor flip(const Tensor& x, const Shape& dims) {
    const char* op = "flip";
    check_defined(x, op);
    std::vector<int64_t> ds;
    if (!dims.empty()) ds = wrap_dims(dims, x.dim(), op);  // empty list: flip nothing
    // The backend has no negative strides: reverse one dim at a time with index_select.
    Tensor cur = x;
    for (int64_t d : ds) {
        int64_t n = x.size(d);
        if (n <= 1) continue;
        Tensor idx = arange(n - 1, -1, -1, {.dtype = DType::int64, .device = x.device()});
        Tensor next = make_tensor(x.shape(), x.dtype(), x.device());
        backend(x).index_select(cur, d, idx, next);
        cur = next;
    }
    Tensor out = cur.is_same(x) ? raw_copy(x) : cur;
    Shape fd = ds;
    return record(op, out, {x}, [fd](const Tensor& g) { return Grads{flip(g, fd)}; });
}

// tril: y = x where col - row <= k, else 0 (last two dims);  dx = tril(dy, k)
Tensor tril(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, true, "tril"); }
// triu: y = x where col - row >= k, else 0 (last two dims);  dx = triu(dy, k)
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, false, "triu"); }

}  // namespace soma
