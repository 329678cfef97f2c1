// Internal: a thread-local free-list allocator for the small objects every op creates
// (TensorImpl, Storage, autograd Node, each with its shared_ptr control block).
//
// A recorded 1-element add used to make ~18 heap allocations; glibc's malloc + free cost about
// 150 instructions per pair, the free list about 20. Blocks are sized in 16-byte classes up to
// kPoolMaxBytes; each thread keeps at most kPoolMaxPerClass free blocks per class and returns
// the rest (and everything at thread exit) to the global heap, so nothing leaks and a block
// freed on another thread simply joins that thread's list. Under AddressSanitizer the free
// blocks are poisoned, so a use after free is still reported.
#pragma once

#include <cstddef>
#include <memory>
#include <new>

// Free-listed blocks are poisoned under AddressSanitizer, so a use after free is still caught.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SOMA_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SOMA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SOMA_POISON(p, n) ((void)(p), (void)(n))
#define SOMA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace soma::detail {

inline constexpr size_t kPoolMaxBytes = 512;
inline constexpr unsigned kPoolMaxPerClass = 4096;

void* pool_allocate(size_t nbytes);            // nbytes <= kPoolMaxBytes
void pool_deallocate(void* p, size_t nbytes);  // the same nbytes

/// std::allocator-compatible front end (for std::allocate_shared).
template <class T>
struct PoolAllocator {
    using value_type = T;
    PoolAllocator() noexcept = default;
    template <class U>
    PoolAllocator(const PoolAllocator<U>&) noexcept {}
    T* allocate(size_t n) {
        if (n == 1 && sizeof(T) <= kPoolMaxBytes) return static_cast<T*>(pool_allocate(sizeof(T)));
        return static_cast<T*>(::operator new(n * sizeof(T)));
    }
    void deallocate(T* p, size_t n) noexcept {
        if (n == 1 && sizeof(T) <= kPoolMaxBytes)
            pool_deallocate(p, sizeof(T));
        else
            ::operator delete(p);
    }
    template <class U>
    bool operator==(const PoolAllocator<U>&) const noexcept {
        return true;
    }
};

/// std::make_shared with the pooled allocator.
template <class T, class... Args>
std::shared_ptr<T> make_pooled(Args&&... args) {
    return std::allocate_shared<T>(PoolAllocator<T>{}, std::forward<Args>(args)...);
}

}  // namespace soma::detail
