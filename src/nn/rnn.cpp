// RNN, LSTM and GRU layers: stacking, directions, batch_first, dropout between layers, states,
// and variable-length batches.
//
// Per layer and direction the input projection of every time step is one GEMM:
// gx = x [T*B, in] · W_ih^T + b_ih -> [T, B, G*H]. The recurrence is then one autograd node
// (functional::rnn_sequence, rnn_seq.cpp): one [B, H] · W_hh^T GEMM and one fused pointwise
// kernel per time step, and a backward that runs the whole reverse-time loop. The reverse
// direction walks t = T-1 .. 0 over the same projection.
//
// Lengths: with mask m_t = (t < length_b), a padded step keeps the previous state
// (h_t = m ? h' : h_{t-1}) and outputs zeros. Forward: the state freezes after the last valid
// step, so the final state is the state at length-1. Reverse: the state stays at h0 through the
// padding, so the sequence starts fresh at its last valid step, exactly as when run alone.
#include "soma/nn/rnn.h"

#include <cmath>
#include <sstream>

#include "soma/nn/functional.h"
#include "soma/nn/init.h"
#include "soma/ops.h"

namespace soma::nn {
namespace F = functional;

RNNState RNNState::detach() const {
    return {h.defined() ? h.detach() : Tensor(), c.defined() ? c.detach() : Tensor()};
}

RNNBase::RNNBase(RNNMode m, RNNOptions o) : options(std::move(o)), mode(m) {
    const char* name = m == RNNMode::lstm ? "LSTM" : m == RNNMode::gru ? "GRU" : "RNN";
    SOMA_CHECK_VALUE(options.input_size > 0 && options.hidden_size > 0, name,
                     ": input_size and hidden_size must be positive: got ", options.input_size,
                     " and ", options.hidden_size, ".");
    SOMA_CHECK_VALUE(options.num_layers > 0, name, ": num_layers must be positive: got ",
                     options.num_layers, ".");
    SOMA_CHECK_VALUE(options.dropout >= 0 && options.dropout <= 1, name,
                     ": dropout must be in [0, 1]: got ", options.dropout, ".");
    const int64_t H = options.hidden_size, G = gate_count() * H;
    for (int64_t l = 0; l < options.num_layers; ++l) {
        for (int64_t d = 0; d < num_directions(); ++d) {
            const std::string sfx = "_l" + std::to_string(l) + (d ? "_reverse" : "");
            const int64_t in = l == 0 ? options.input_size : H * num_directions();
            Weights w;
            w.w_ih = register_parameter("weight_ih" + sfx, empty({G, in}));
            w.w_hh = register_parameter("weight_hh" + sfx, empty({G, H}));
            if (options.bias) {
                w.b_ih = register_parameter("bias_ih" + sfx, empty({G}));
                w.b_hh = register_parameter("bias_hh" + sfx, empty({G}));
            }
            weights.push_back(w);
        }
    }
    reset_parameters();
}

int64_t RNNBase::gate_count() const {
    return mode == RNNMode::lstm ? 4 : mode == RNNMode::gru ? 3 : 1;
}

void RNNBase::reset_parameters() {
    const double k = 1.0 / std::sqrt(static_cast<double>(options.hidden_size));
    for (auto& [n, p] : params_) init::uniform_(p, -k, k);
}

RNN::RNN(RNNOptions o) : RNNBase(RNNMode::rnn_tanh, std::move(o)) {
    SOMA_CHECK_VALUE(options.nonlinearity == "tanh" || options.nonlinearity == "relu",
                     "RNN: unknown nonlinearity: got \"", options.nonlinearity,
                     "\", expected \"tanh\" or \"relu\".");
    if (options.nonlinearity == "relu") mode = RNNMode::rnn_relu;
}

std::string RNNBase::extra_repr() const {
    std::ostringstream os;
    os << options.input_size << ", " << options.hidden_size;
    if (options.num_layers != 1) os << ", num_layers=" << options.num_layers;
    if (mode == RNNMode::rnn_relu) os << ", nonlinearity=relu";
    if (!options.bias) os << ", bias=False";
    if (options.batch_first) os << ", batch_first=True";
    if (options.dropout != 0) os << ", dropout=" << options.dropout;
    if (options.bidirectional) os << ", bidirectional=True";
    return os.str();
}

RNNOutput RNNBase::operator()(const Tensor& x, const RNNState& state, const Tensor& lengths) {
    return forward(x, state, lengths);
}

RNNOutput RNNBase::forward(const Tensor& x_in, const RNNState& state, const Tensor& lengths) {
    const std::string name = describe();
    const int64_t H = options.hidden_size, L = options.num_layers, D = num_directions();
    SOMA_CHECK_SHAPE(x_in.defined() && (x_in.dim() == 2 || x_in.dim() == 3) &&
                         x_in.size(-1) == options.input_size,
                     name, ": expected input [T, B, ", options.input_size, "]",
                     options.batch_first ? " (batch_first: [B, T, in])" : "", " or [T, ",
                     options.input_size, "]: got ", x_in.defined() ? x_in.shape() : Shape{}, ".");
    SOMA_CHECK_DTYPE(x_in.dtype() == weights[0].w_ih.dtype(), name,
                     ": input and parameters must share a dtype: got input ", x_in.dtype(),
                     " and parameters ", weights[0].w_ih.dtype(), ". Convert with .to().");
    const bool unbatched = x_in.dim() == 2;
    Tensor x = unbatched ? x_in.unsqueeze(1) : options.batch_first ? x_in.transpose(0, 1) : x_in;
    const int64_t T = x.size(0), B = x.size(1);
    SOMA_CHECK_SHAPE(T > 0, name, ": the sequence is empty: input ", x_in.shape(), ".");
    const TensorOptions topt{.dtype = x.dtype(), .device = x.device()};

    auto prep = [&](const Tensor& s, const char* what) {
        if (!s.defined()) return zeros({L * D, B, H}, topt);
        Tensor t = unbatched && s.dim() == 2 ? s.unsqueeze(1) : s;
        SOMA_CHECK_SHAPE(t.shape() == Shape({L * D, B, H}), name, ": ", what,
                         " must be [num_layers * directions, B, hidden] = [", L * D, ", ", B, ", ",
                         H, "]: got ", s.shape(), " (input ", x_in.shape(), ").");
        SOMA_CHECK_DTYPE(t.dtype() == x.dtype(), name, ": ", what, " must have the input's dtype ",
                         x.dtype(), ": got ", t.dtype(), ".");
        return t;
    };
    const bool lstm = mode == RNNMode::lstm;
    SOMA_CHECK_VALUE(lstm || !state.c.defined(), name,
                     ": a cell state c was given, but only LSTM has one.");
    Tensor h0 = prep(state.h, "h"), c0 = lstm ? prep(state.c, "c") : Tensor();

    // Lengths, only when some sequence is shorter than T (empty: no masking).
    std::vector<int64_t> lv;
    if (lengths.defined()) {
        SOMA_CHECK_SHAPE(lengths.dim() == 1 && lengths.size(0) == B, name,
                         ": lengths must be [B] = [", B, "]: got ", lengths.shape(), ".");
        SOMA_CHECK_DTYPE(lengths.dtype() == DType::int64, name, ": lengths must be int64: got ",
                         lengths.dtype(), ".");
        lv = lengths.to_vector<int64_t>();
        bool all_full = true;
        for (int64_t v : lv) {
            SOMA_CHECK_VALUE(v >= 1 && v <= T, name, ": every length must be in [1, T = ", T,
                             "]: got ", v, ".");
            all_full = all_full && v == T;
        }
        if (all_full) lv.clear();
    }

    Tensor layer_in = x;
    std::vector<Tensor> hn, cn;
    for (int64_t l = 0; l < L; ++l) {
        std::vector<Tensor> dir_out;
        for (int64_t d = 0; d < D; ++d) {
            const Weights& w = weights[static_cast<size_t>(l * D + d)];
            // [T, B, G*H], one GEMM; b_ih is added (and its gradient summed) inside the sequence
            // node, which sums the gate gradients anyway.
            Tensor gx = F::linear(layer_in, w.w_ih, Tensor());
            RNNState s{h0[l * D + d], lstm ? c0[l * D + d] : Tensor()};
            RNNOutput r = F::rnn_sequence(mode, gx, w.w_hh, w.b_hh, s, lv, d == 1, w.b_ih);
            dir_out.push_back(r.output);
            hn.push_back(r.h);
            if (lstm) cn.push_back(r.c);
        }
        layer_in = D == 2 ? cat(dir_out, 2) : dir_out[0];
        if (l + 1 < L && options.dropout > 0 && is_training())
            layer_in = F::dropout(layer_in, options.dropout, true);
    }
    RNNOutput r{layer_in, stack(hn, 0), lstm ? stack(cn, 0) : Tensor()};
    if (unbatched) {
        r.output = r.output.squeeze(1);
        r.h = r.h.squeeze(1);
        if (lstm) r.c = r.c.squeeze(1);
    } else if (options.batch_first) {
        r.output = r.output.transpose(0, 1);
    }
    return r;
}

}  // namespace soma::nn
