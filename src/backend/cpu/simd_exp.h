// Internal: a branch-free float exp, scalar and with eight AVX2 lanes (the same operations, so
// the same results), for kernels that need many exponentials: the RNN activations
// (nn/rnn_seq.cpp) and the softmax of cross-entropy (nn/functional_loss.cpp).
//
// Cephes' expf: k = round(x log2 e), r = x - k ln 2 in two parts, exp(r) by a polynomial, 2^k
// from the exponent bits; relative error about 2e-7; inputs clamped to [-87, 88]. GCC does not
// vectorize the scalar form without -fno-trapping-math, hence the intrinsics. Callers check
// cpu_has_avx2() before calling exp256 (compiled for AVX2 whatever the build's flags).
#pragma once

#include <bit>
#include <cstdint>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace soma::simd {

inline float exp_scalar(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    const float t = x * 1.44269504088896341f + 0.5f;
    float k = static_cast<float>(static_cast<int32_t>(t));
    if (k > t) k -= 1.0f;  // floor
    const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * std::bit_cast<float>((static_cast<int32_t>(k) + 127) << 23);
}

#if defined(__x86_64__)
// exp_scalar with eight lanes (AVX2; the same operations, so the same results).
__attribute__((target("avx2"))) inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 t =
        _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _mm256_set1_ps(0.5f));
    __m256 k = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(t));
    k = _mm256_sub_ps(k, _mm256_and_ps(_mm256_cmp_ps(k, t, _CMP_GT_OQ), _mm256_set1_ps(1.0f)));
    const __m256 r = _mm256_add_ps(_mm256_sub_ps(x, _mm256_mul_ps(k, _mm256_set1_ps(0.693359375f))),
                                   _mm256_mul_ps(k, _mm256_set1_ps(2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r),
                      _mm256_set1_ps(1.0f));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif

/// Whether exp256 may run here.
inline bool cpu_has_avx2() {
#if defined(__x86_64__)
    static const bool ok = __builtin_cpu_supports("avx2");
    return ok;
#else
    return false;
#endif
}

}  // namespace soma::simd
