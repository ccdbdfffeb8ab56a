/* token_hunt.h — the shell command the token tests run inside a sandbox to count the places its
 * code can read a secret from: every process's environment and command line, and the files the
 * caller's grep arguments name. The needle travels in two halves joined inside the shell, so the
 * command line of the hunt itself never holds it whole. Used against local (tests/attack) and
 * docker (tests/docker) sandboxes. */
#ifndef AGX_TEST_TOKEN_HUNT_H
#define AGX_TEST_TOKEN_HUNT_H

#include <stdio.h>
#include <string.h>

/* files: grep's arguments after the pattern, e.g. "'/some/root'" or "/ --exclude-dir=proc".
 * The command prints one number: the places found. */
static inline void token_hunt_command(const char *needle, const char *files, char *out,
                                      size_t cap)
{
    int half = (int)strlen(needle) / 2;
    snprintf(out, cap,
             "A='%.*s'; B='%s'; n=0; for p in /proc/[0-9]*; do "
             "  for f in environ cmdline; do "
             "    v=$(tr '\\0' '\\n' < $p/$f 2>/dev/null); "
             "    case \"$v\" in *\"$A$B\"*) n=$((n+1)); echo \"found in $p/$f\" >&2;; esac; "
             "  done; "
             "done; "
             "f=$(grep -rlF -D skip -f <(printf %%s%%s \"$A\" \"$B\") %s 2>/dev/null | wc -l); "
             "echo $((n+f))",
             half, needle, needle + half, files);
}

#endif
