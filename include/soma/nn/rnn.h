// soma/nn/rnn.h — recurrent layers: RNN (tanh / relu), LSTM, GRU and their single-step cells.
//
// Parameter names, shapes, gate order and initialisation are PyTorch's, so state dicts move
// between the two: weight_ih_l{k}[_reverse] [G*hidden, in], weight_hh_l{k}[_reverse]
// [G*hidden, hidden], bias_ih_l{k}, bias_hh_l{k} [G*hidden] with G = 1 (RNN), 4 (LSTM: i, f, g,
// o), 3 (GRU: r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))); all U(-1/√hidden,
// 1/√hidden).
//
// Shapes: input [T, B, in] ([B, T, in] with batch_first, [T, in] unbatched); h and c
// [layers * directions, B, hidden] (batch_first never changes them); output [T, B, directions *
// hidden]. `lengths` (int64 [B], each in 1..T) runs a padded batch as separate sequences: outputs
// at padded steps are zero and final states are taken at each sequence's last valid step (the
// equivalent of PyTorch's packed sequences).
//
//     soma::nn::LSTM lstm({.input_size = 8, .hidden_size = 32, .num_layers = 2});
//     auto r = lstm(x, {.h = h0, .c = c0});       // r.output [T, B, 32], r.h, r.c [2, B, 32]
//     auto r2 = lstm(x2, r.state().detach());      // truncated BPTT: carry the state
//
// Throws soma::ShapeError for inputs or states of the wrong shape, soma::ValueError for bad
// options or lengths.
#pragma once

#include <string>
#include <vector>

#include "soma/nn/module.h"

namespace soma::nn {

/// A recurrent state: h, plus c for LSTM (undefined otherwise). Undefined = zeros.
struct RNNState {
    Tensor h, c;
    RNNState detach() const;  // cuts the graph (truncated backpropagation through time)
};

/// What a recurrent layer returns: the top layer's output at every step and the final states.
struct RNNOutput {
    Tensor output, h, c;
    RNNState state() const { return {h, c}; }
};

enum class RNNMode { rnn_tanh, rnn_relu, lstm, gru };

struct RNNOptions {
    int64_t input_size = 0, hidden_size = 0, num_layers = 1;
    bool bias = true, batch_first = false;
    double dropout = 0;  // on the outputs of every layer but the last, in training mode
    bool bidirectional = false;
    std::string nonlinearity = "tanh";  // RNN only: "tanh" or "relu"
};

/// The shared implementation of RNN, LSTM and GRU.
class RNNBase : public Module {
  public:
    RNNBase(RNNMode mode, RNNOptions o);
    /// Runs the sequence from `state` (zeros where undefined); see the file comment for shapes.
    RNNOutput forward(const Tensor& x, const RNNState& state, const Tensor& lengths = {});
    /// The output only, from zero states.
    Tensor forward(const Tensor& x) override { return forward(x, RNNState{}).output; }
    using Module::operator();
    RNNOutput operator()(const Tensor& x, const RNNState& state, const Tensor& lengths = {});
    std::string extra_repr() const override;
    void reset_parameters();
    int64_t gate_count() const;
    int64_t num_directions() const { return options.bidirectional ? 2 : 1; }

    RNNOptions options;
    RNNMode mode;
    /// Per layer and direction, in PyTorch's order (l0, l0_reverse, l1, ...): w_ih, w_hh, b_ih,
    /// b_hh (biases undefined without bias).
    struct Weights {
        Tensor w_ih, w_hh, b_ih, b_hh;
    };
    std::vector<Weights> weights;
};

class RNN : public RNNBase {
  public:
    explicit RNN(RNNOptions o);
    std::string type_name() const override { return "RNN"; }
};
class LSTM : public RNNBase {
  public:
    explicit LSTM(RNNOptions o) : RNNBase(RNNMode::lstm, std::move(o)) {}
    std::string type_name() const override { return "LSTM"; }
};
class GRU : public RNNBase {
  public:
    explicit GRU(RNNOptions o) : RNNBase(RNNMode::gru, std::move(o)) {}
    std::string type_name() const override { return "GRU"; }
};

struct RNNCellOptions {
    int64_t input_size = 0, hidden_size = 0;
    bool bias = true;
    std::string nonlinearity = "tanh";  // RNNCell only
};

/// One step. x [B, in] (or [in]); state h (and c) [B, hidden] (or [hidden]); zeros when
/// undefined. Parameters weight_ih, weight_hh, bias_ih, bias_hh as in PyTorch.
class RNNCellBase : public Module {
  public:
    RNNCellBase(RNNMode mode, RNNCellOptions o);
    RNNState forward(const Tensor& x, const RNNState& state);
    Tensor forward(const Tensor& x) override { return forward(x, RNNState{}).h; }
    using Module::operator();
    RNNState operator()(const Tensor& x, const RNNState& state);
    std::string extra_repr() const override;
    RNNCellOptions options;
    RNNMode mode;
    Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};
class RNNCell : public RNNCellBase {
  public:
    explicit RNNCell(RNNCellOptions o);
    std::string type_name() const override { return "RNNCell"; }
};
class LSTMCell : public RNNCellBase {
  public:
    explicit LSTMCell(RNNCellOptions o) : RNNCellBase(RNNMode::lstm, std::move(o)) {}
    std::string type_name() const override { return "LSTMCell"; }
};
class GRUCell : public RNNCellBase {
  public:
    explicit GRUCell(RNNCellOptions o) : RNNCellBase(RNNMode::gru, std::move(o)) {}
    std::string type_name() const override { return "GRUCell"; }
};

namespace functional {
/// Fused LSTM step: gates = gx + gh ([B, 4H], order i, f, g, o), c' = σ(f) c + σ(i) tanh(g),
/// h' = σ(o) tanh(c'). Returns [B, 2H] = [h', c'] (narrow it); one autograd node.
Tensor lstm_step(const Tensor& gx, const Tensor& gh, const Tensor& c);
/// Fused GRU step: gx = W_ih x + b_ih, gh = W_hh h + b_hh ([B, 3H], order r, z, n);
/// h' = (1 - z) n + z h with n = tanh(gx_n + r gh_n). One autograd node.
Tensor gru_step(const Tensor& gx, const Tensor& gh, const Tensor& h);
/// One step of any mode from the two projections gx = W_ih x + b_ih, gh = W_hh h + b_hh
/// ([B, G*H]); state.h (and state.c for LSTM) [B, H].
RNNState rnn_step(RNNMode mode, const Tensor& gx, const Tensor& gh, const RNNState& state);
/// The whole recurrence of one layer and direction as one autograd node: gx = x W_ih^T [T, B,
/// G*H] (all steps; its bias may be folded in or passed as b_ih), w_hh [G*H, H], b_hh and b_ih
/// [G*H] (either may be undefined), state.h (and state.c for LSTM) [B, H], lengths empty or B
/// values in 1..T (steps t >= length keep the state and output zeros), reverse walks
/// t = T-1 .. 0. Returns output [T, B, H] and the final h (c). Gradients flow to gx, the state,
/// w_hh and the biases; double backward through it is not supported (the backward is a direct
/// loop). CPU only.
RNNOutput rnn_sequence(RNNMode mode, const Tensor& gx, const Tensor& w_hh, const Tensor& b_hh,
                       const RNNState& state, const std::vector<int64_t>& lengths = {},
                       bool reverse = false, const Tensor& b_ih = {});
}  // namespace functional

}  // namespace soma::nn
