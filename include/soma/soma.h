// soma/soma.h — everything in one include.
#pragma once

#include "soma/autograd.h"
#include "soma/data.h"
#include "soma/dtype.h"
#include "soma/error.h"
#include "soma/gradcheck.h"
#include "soma/io.h"
#include "soma/nn.h"
#include "soma/ops.h"
#include "soma/optim.h"
#include "soma/parallel.h"
#include "soma/random.h"
#include "soma/tensor.h"
