// soma/parallel.h — thread count for Soma's kernels (and the BLAS under them).
//
// Default: the number of hardware threads. Results are bitwise reproducible for a given seed
// and thread count.
//
//     soma::set_num_threads(1);
#pragma once

namespace soma {

void set_num_threads(int n);  // n >= 1
int get_num_threads();

}  // namespace soma
