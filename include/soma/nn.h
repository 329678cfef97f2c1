// soma/nn.h — modules, layers, losses, functional ops and initialisers.
#pragma once

#include "soma/nn/functional.h"
#include "soma/nn/init.h"
#include "soma/nn/layers.h"
#include "soma/nn/loss.h"
#include "soma/nn/module.h"
