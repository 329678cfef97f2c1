// soma/soma.h — everything in one include.
#pragma once

#include "soma/autograd.h"
#include "soma/dtype.h"
#include "soma/error.h"
#include "soma/gradcheck.h"
#include "soma/ops.h"
#include "soma/parallel.h"
#include "soma/random.h"
#include "soma/tensor.h"
