/* check.h — the tiny assertion kit every C test uses: a failed CHECK prints file:line and the
 * expression and exits non-zero, so CTest reports the test as failed. */
#ifndef AGX_TEST_CHECK_H
#define AGX_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                   \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

/* rc must be 0; on failure print the agx_error. */
#define CHECK_OK(rc, errp)                                                                     \
    do {                                                                                       \
        int check_rc_ = (rc);                                                                  \
        if (check_rc_ != 0) {                                                                  \
            fprintf(stderr, "%s:%d: %s returned %d (%s): %s\n  detail: %s\n", __FILE__,        \
                    __LINE__, #rc, check_rc_, agx_error_code_name(check_rc_),                 \
                    (errp)->message, (errp)->detail);                                          \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define CHECK_STREQ(a, b)                                                                      \
    do {                                                                                       \
        const char *check_a_ = (a), *check_b_ = (b);                                           \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                      \
            fprintf(stderr, "%s:%d: CHECK_STREQ failed: %s == %s\n  got \"%s\" vs \"%s\"\n",    \
                    __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",               \
                    check_b_ ? check_b_ : "(null)");                                           \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                            \
    do {                                                                                       \
        const char *check_h_ = (hay), *check_n_ = (needle);                                    \
        if (!check_h_ || !strstr(check_h_, check_n_)) {                                       \
            fprintf(stderr, "%s:%d: expected \"%s\" to contain \"%s\"\n", __FILE__, __LINE__,   \
                    check_h_ ? check_h_ : "(null)", check_n_);                                 \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define TEST_RUN(fn)                                                                           \
    do {                                                                                       \
        fprintf(stderr, "-- %s\n", #fn);                                                       \
        fn();                                                                                  \
    } while (0)

/* A program of named scenarios, CTest running one per test: runs the one argv[1] names, or
 * fails with the usage line listing them all. */
typedef struct check_scenario {
    const char *name;
    void (*fn)(void);
} check_scenario;

static inline int check_run_named(int argc, char **argv, const check_scenario *s, size_t n)
{
    for (size_t i = 0; argc == 2 && i < n; i++)
        if (strcmp(argv[1], s[i].name) == 0) {
            fprintf(stderr, "-- %s\n", s[i].name);
            s[i].fn();
            return 0;
        }
    fprintf(stderr, "usage: %s", argv[0]);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%s", i ? "|" : " ", s[i].name);
    fprintf(stderr, "\n");
    return 2;
}

#endif
