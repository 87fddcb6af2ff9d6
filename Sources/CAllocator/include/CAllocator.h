#ifndef CALLOCATOR_H
#define CALLOCATOR_H

// glibc's allocator tuning lives in <malloc.h>, which Swift's Glibc module does
// not export. Both return 0 where the C library is not glibc.

// 1 when this build calls glibc's allocator (the two below are not no-ops).
int callocator_is_tunable(void);

// mallopt(M_ARENA_MAX, count): at most `count` malloc arenas for the process.
int callocator_limit_arenas(int count);

// malloc_trim(0): hands free pages of every arena back to the kernel; 1 if any was released.
int callocator_trim(void);

#endif
