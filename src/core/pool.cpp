// The object pool: FreeLists of 16-byte classes over the global heap (see pool.h).
#include "core/pool.h"

namespace soma::detail {
namespace {

struct ObjectClasses {
    static constexpr size_t kGrain = 16;
    static constexpr size_t kCount = kPoolMaxBytes / kGrain;
    static constexpr unsigned kCap = kPoolMaxPerClass;
    static size_t index(size_t nbytes) { return (nbytes + kGrain - 1) / kGrain - 1; }
    static size_t bytes(size_t c) { return (c + 1) * kGrain; }
};
struct Heap {
    static void* allocate(size_t nbytes) { return ::operator new(nbytes); }
    static void release(void* p, size_t) { ::operator delete(p); }
};
using ObjectLists = FreeLists<ObjectClasses, Heap>;

}  // namespace

void* pool_allocate(size_t nbytes) { return ObjectLists::allocate(nbytes); }
void pool_deallocate(void* p, size_t nbytes) { ObjectLists::deallocate(p, nbytes); }

}  // namespace soma::detail
