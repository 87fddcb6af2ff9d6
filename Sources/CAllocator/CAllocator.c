#include "CAllocator.h"
// <malloc.h> brings <features.h>, which defines __GLIBC__: test for glibc only after it.
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif

int callocator_is_tunable(void) {
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    return 1;
#else
    return 0;
#endif
}

int callocator_limit_arenas(int count) {
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    return mallopt(M_ARENA_MAX, count);
#else
    (void)count;
    return 0;
#endif
}

int callocator_trim(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}
