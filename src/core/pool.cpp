// Thread-local free lists for small objects (see pool.h for why).
#include "core/pool.h"

#include <cstdint>

namespace soma::detail {
namespace {

constexpr size_t kGrain = 16;
constexpr size_t kClasses = kPoolMaxBytes / kGrain;

struct FreeBlock {
    FreeBlock* next;
};

// Plain data (trivially destructible), so it stays usable while other thread_local and static
// objects are destroyed after the Drain below has run.
struct Lists {
    FreeBlock* head[kClasses];
    unsigned count[kClasses];
    bool registered;  // the Drain object of this thread exists
    bool dead;        // the Drain has run: bypass the lists from now on
};
thread_local Lists tl_lists{};

size_t class_of(size_t nbytes) { return (nbytes + kGrain - 1) / kGrain - 1; }

void drain_all() {
    Lists& l = tl_lists;
    for (size_t c = 0; c < kClasses; ++c) {
        while (FreeBlock* b = l.head[c]) {
            SOMA_UNPOISON(b, (c + 1) * kGrain);
            l.head[c] = b->next;
            ::operator delete(b);
        }
        l.count[c] = 0;
    }
}

// Returns this thread's free blocks to the heap when the thread ends.
struct Drain {
    ~Drain() {
        drain_all();
        tl_lists.dead = true;
    }
};

void register_drain() {
    thread_local Drain drain;
    (void)drain;
    tl_lists.registered = true;
}

}  // namespace

void* pool_allocate(size_t nbytes) {
    Lists& l = tl_lists;
    size_t c = class_of(nbytes);
    if (FreeBlock* b = l.head[c]) {
        SOMA_UNPOISON(b, (c + 1) * kGrain);
        l.head[c] = b->next;
        --l.count[c];
        return b;
    }
    if (!l.registered && !l.dead) register_drain();
    return ::operator new((c + 1) * kGrain);
}

void pool_deallocate(void* p, size_t nbytes) {
    Lists& l = tl_lists;
    size_t c = class_of(nbytes);
    if (l.dead || !l.registered || l.count[c] >= kPoolMaxPerClass) {
        ::operator delete(p);
        return;
    }
    auto* b = static_cast<FreeBlock*>(p);
    b->next = l.head[c];
    l.head[c] = b;
    ++l.count[c];
    SOMA_POISON(b, (c + 1) * kGrain);
}

}  // namespace soma::detail
