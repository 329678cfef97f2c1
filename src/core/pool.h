// Internal: thread-local free lists of small blocks, in front of a slower allocator.
//
// Two instantiations: the object pool below (TensorImpl, Storage, autograd Node, each with its
// shared_ptr control block; pool.cpp) and the small tensor-data buffers (tensor.cpp). A recorded
// 1-element add used to make ~18 heap allocations; glibc's malloc + free cost about 150
// instructions per pair, the free list about 20. Each thread keeps at most a capped number of
// free blocks per size class and returns the rest (and everything at thread exit) to where they
// came from, so nothing leaks, and a block freed on another thread joins that thread's lists
// (once it has lists: a thread starts keeping blocks when it first allocates). Under
// AddressSanitizer the free blocks are poisoned, so a use after free is still reported.
#pragma once

#include <cstddef>
#include <memory>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SOMA_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SOMA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SOMA_POISON(p, n) ((void)(p), (void)(n))
#define SOMA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace soma::detail {

/// The free lists of one thread. `Classes` gives the size classes: kCount of them, index(nbytes)
/// picks one, bytes(c) is its block size, and each thread keeps at most kCap free blocks per
/// class. `Source` is where blocks come from and go back to: static allocate(bytes) and
/// release(p, bytes). Instantiate with types local to one .cpp file, so each user has its own
/// lists. deallocate takes the nbytes that allocate was given.
template <class Classes, class Source>
class FreeLists {
  public:
    static void* allocate(size_t nbytes) {
        State& s = tl_state;
        size_t c = Classes::index(nbytes);
        if (Block* b = s.head[c]) {
            SOMA_UNPOISON(b, Classes::bytes(c));
            s.head[c] = b->next;
            --s.count[c];
            return b;
        }
        if (!s.registered && !s.dead) register_drain();
        return Source::allocate(Classes::bytes(c));
    }
    static void deallocate(void* p, size_t nbytes) {
        State& s = tl_state;
        size_t c = Classes::index(nbytes);
        if (s.dead || !s.registered || s.count[c] >= Classes::kCap) {
            Source::release(p, Classes::bytes(c));
            return;
        }
        auto* b = static_cast<Block*>(p);
        b->next = s.head[c];
        s.head[c] = b;
        ++s.count[c];
        SOMA_POISON(b, Classes::bytes(c));
    }

  private:
    struct Block {
        Block* next;
    };
    // Plain data (trivially destructible), so it stays usable while other thread_local and static
    // objects are destroyed after the Drain below has run.
    struct State {
        Block* head[Classes::kCount];
        unsigned count[Classes::kCount];
        bool registered;  // the Drain object of this thread exists
        bool dead;        // the Drain has run: bypass the lists from now on
    };
    static inline thread_local State tl_state{};

    // Returns this thread's free blocks to the source when the thread ends.
    struct Drain {
        ~Drain() {
            State& s = tl_state;
            for (size_t c = 0; c < Classes::kCount; ++c) {
                while (Block* b = s.head[c]) {
                    SOMA_UNPOISON(b, Classes::bytes(c));
                    s.head[c] = b->next;
                    Source::release(b, Classes::bytes(c));
                }
                s.count[c] = 0;
            }
            s.dead = true;
        }
    };
    static void register_drain() {
        thread_local Drain drain;
        (void)drain;
        tl_state.registered = true;
    }
};

// ---- the object pool (pool.cpp) ----------------------------------------------------------------

inline constexpr size_t kPoolMaxBytes = 512;  // in 16-byte classes
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
