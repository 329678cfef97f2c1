// Internal: the named fields of each optimizer's options, for the flat state dict.
#pragma once

#include <type_traits>
#include <variant>

#include "soma/optim/optimizer.h"

namespace soma::optim {

// f(name, field&) for every field; field is double& or bool&.
template <class F>
void option_fields(SGDOptions& o, F&& f) {
    f("lr", o.lr);
    f("momentum", o.momentum);
    f("dampening", o.dampening);
    f("weight_decay", o.weight_decay);
    f("nesterov", o.nesterov);
    f("maximize", o.maximize);
}
template <class O, class F>
requires std::is_same_v<O, AdamOptions> || std::is_same_v<O, AdamWOptions>
void option_fields(O& o, F&& f) {
    f("lr", o.lr);
    f("betas.0", o.betas[0]);
    f("betas.1", o.betas[1]);
    f("eps", o.eps);
    f("weight_decay", o.weight_decay);
    f("amsgrad", o.amsgrad);
    f("maximize", o.maximize);
}
template <class F>
void option_fields(RMSpropOptions& o, F&& f) {
    f("lr", o.lr);
    f("alpha", o.alpha);
    f("eps", o.eps);
    f("weight_decay", o.weight_decay);
    f("momentum", o.momentum);
    f("centered", o.centered);
    f("maximize", o.maximize);
}
template <class F>
void option_fields(AdagradOptions& o, F&& f) {
    f("lr", o.lr);
    f("lr_decay", o.lr_decay);
    f("weight_decay", o.weight_decay);
    f("initial_accumulator_value", o.initial_accumulator_value);
    f("eps", o.eps);
    f("maximize", o.maximize);
}

template <class F>
void for_each_option(GroupOptions& options, F&& f) {
    std::visit(
        [&](auto& o) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(o)>, std::monostate>)
                option_fields(o, f);
        },
        options);
}

}  // namespace soma::optim
