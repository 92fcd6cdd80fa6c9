/* Minimal test harness: CHECK counts failures; each test file's main returns non-zero on failure. */
#ifndef WEFT_TESTLIB_H
#define WEFT_TESTLIB_H
#include <stdio.h>

static int tl_failures, tl_checks;
#define CHECK(cond)                                                        \
  do {                                                                     \
    tl_checks++;                                                           \
    if (!(cond)) {                                                         \
      tl_failures++;                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)
#define CHECK_EQ(a, b)                                                              \
  do {                                                                              \
    long long _a = (long long)(a), _b = (long long)(b);                             \
    tl_checks++;                                                                    \
    if (_a != _b) {                                                                 \
      tl_failures++;                                                                \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, \
              #a, #b, _a, _b);                                                      \
    }                                                                               \
  } while (0)
#define RUN(fn)   \
  do {            \
    fn();         \
  } while (0)
#define TL_DONE(name)                                                                   \
  do {                                                                                  \
    printf("%s: %d checks, %d failed\n", name, tl_checks, tl_failures);                 \
    return tl_failures ? 1 : 0;                                                         \
  } while (0)
#endif
