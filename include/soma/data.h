// soma/data.h — the data module: datasets, the DataLoader, file readers and transforms.
//
// Contract: see the four headers below. Everything lives in namespace soma::data, is CPU-only,
// and hands out tensors that never require grad.
//
//     #include <soma/data.h>
//     auto train = std::make_shared<soma::data::FashionMNIST>("", /*train=*/true);
//     soma::data::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .seed = 0});
//     for (const auto& batch : loader) { /* batch.input [64, 1, 28, 28], batch.target [64] */ }
#pragma once

#include "soma/data/dataset.h"
#include "soma/data/loader.h"
#include "soma/data/readers.h"
#include "soma/data/transforms.h"
