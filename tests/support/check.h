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

#endif
