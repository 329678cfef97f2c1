// Internal: the fast float32 path of functional::rnn_sequence (rnn_seq.cpp) and its switch.
//
// The recurrent GEMMs of a layer (h_prev W_hh^T per step forward, dgates W_hh per step
// backward) multiply by the same W_hh T times. The fast path packs W_hh once per call into
// 16-column panels and runs an AVX2/FMA micro-kernel on them (OpenBLAS would repack W_hh on
// every call), splits the panels over Soma's threads, and runs the LSTM cell with AVX2. It is
// used for float32 on CPUs with AVX2 and FMA; float64 (the gradcheck oracle) and other CPUs
// take the reference path (Backend::gemm per step). oneDNN's LSTM primitive was measured as an
// alternative and was slower here (see notes in rnn_seq.cpp).
//
// set_use_fast_rnn(false), or SOMA_RNN_FAST=0 in the environment, forces the reference path
// (tests and A/B benchmarks).
#pragma once

namespace soma::nn::detail {

void set_use_fast_rnn(bool on);
/// True when the fast path is enabled and the CPU supports it.
bool use_fast_rnn();

}  // namespace soma::nn::detail
