/* local_stage.c — a local sandbox's folder appears in AGENTIX_LOCAL_ROOT with its ownership record
 * already inside (create → here → local.c's spawn): the folder is made under a staging name that
 * names its creator, ".new-<pid>-<start ticks>-<id>", the record (pid 0: nothing runs yet) is
 * written there, and one rename puts it in place. So a host killed at any instant of a create
 * leaves either a sandbox folder gc can judge by its record, or a staging folder that any later
 * list (and so gc) judges by its name and removes once its creator is gone. */
#include "backends/local/local_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentix/backend/files.h"
#include "agentix/backend/labels.h"

#define STAGE_PREFIX ".new-"

int agx_local_stage_make(const char *root, const char *id, char *stage, size_t n, agx_error *err)
{
    agx_kv *me = agx_kv_new();
    int rc = me ? agx_owner_labels_set(me, NULL, err)
                : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!rc && (size_t)snprintf(stage, n, "%s/" STAGE_PREFIX "%s-%s-%s", root,
                                agx_kv_get(me, AGX_LABEL_OWNER_PID),
                                agx_kv_get(me, AGX_LABEL_OWNER_START), id) >= n)
        rc = agx_error_set(err, AGX_ERR_LIMIT, "AGENTIX_LOCAL_ROOT '%s' is too long", root);
    agx_kv_free(me);
    if (rc)
        return rc;
    if (mkdir(stage, 0700) != 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot create sandbox directory '%s': %s", stage,
                             strerror(errno));
    /* The sandbox's own folder, inside the backend's: its code never sees the record. */
    char work[AGX_LOCAL_PATH_MAX + sizeof "/" AGX_LOCAL_WORK];
    snprintf(work, sizeof work, "%s/" AGX_LOCAL_WORK, stage);
    if (mkdir(work, 0700) == 0)
        return 0;
    int e = errno;
    rmdir(stage);
    return agx_error_set(err, AGX_ERR_IO, "cannot create sandbox directory '%s': %s", work,
                         strerror(e));
}

int agx_local_stage_commit(const char *stage, const char *dir, agx_error *err)
{
    /* NOREPLACE: an existing folder of that id (a clash of random ids) is never taken over. */
    if (renameat2(AT_FDCWD, stage, AT_FDCWD, dir, RENAME_NOREPLACE) == 0)
        return 0;
    return agx_error_set(err, errno == EEXIST ? AGX_ERR_CONFLICT : AGX_ERR_IO,
                         "cannot move sandbox directory '%s' into place: %s", dir, strerror(errno));
}

/* The creator a staging name names, as owner labels for agx_owner_judge: GONE once it ended. */
static agx_owner_verdict stage_owner(const char *name)
{
    uint64_t pid, start;
    int used = 0;
    if (sscanf(name, STAGE_PREFIX "%" SCNu64 "-%" SCNu64 "-%n", &pid, &start, &used) != 2 ||
        used == 0 || !agx_local_id_valid(name + used))
        return AGX_OWNER_UNKNOWN;
    char p[24], s[24];
    snprintf(p, sizeof p, "%" PRIu64, pid);
    snprintf(s, sizeof s, "%" PRIu64, start);
    agx_kv *labels = agx_kv_new();
    agx_owner_verdict v = AGX_OWNER_UNKNOWN;
    if (labels && agx_owner_labels_set(labels, NULL, NULL) == 0 &&
        agx_kv_set(labels, AGX_LABEL_OWNER_PID, p) == 0 &&
        agx_kv_set(labels, AGX_LABEL_OWNER_START, s) == 0)
        v = agx_owner_judge(labels, 0); /* this host's name: staging folders are local */
    agx_kv_free(labels);
    return v;
}

void agx_local_stage_sweep(const char *root)
{
    DIR *d = opendir(root);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, STAGE_PREFIX, strlen(STAGE_PREFIX)) != 0 ||
            stage_owner(de->d_name) != AGX_OWNER_GONE)
            continue;
        char path[AGX_LOCAL_PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", root, de->d_name) < sizeof path)
            agx_fs_rmtree(path, NULL);
    }
    if (d)
        closedir(d);
}
