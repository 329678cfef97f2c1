// Consumer of an installed Soma: prints "sum = 4" and exits 0 iff ones({2, 2}).sum() == 4.
#include <soma/soma.h>

#include <iostream>

int main() {
    const double sum = soma::ones({2, 2}).sum().item<double>();
    std::cout << "sum = " << sum << "\n";
    return sum == 4.0 ? 0 : 1;
}
