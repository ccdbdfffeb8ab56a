/* labels.c — labels a backend keeps in a record of its own (labels.h): the bounds that keep a
 * record small, UTF-8 since records are JSON, and the label filter of list. */
#include "agentix/backend/labels.h"

#include <jansson.h>
#include <string.h>

static int utf8_valid(const char *s)
{
    json_t *j = json_string(s); /* jansson validates UTF-8 */
    json_decref(j);
    return j != NULL;
}

int agx_labels_check(const agx_kv *labels, const char *backend, agx_error *err)
{
    size_t n = labels ? agx_kv_count(labels) : 0;
    if (n > AGX_LABELS_RECORD_MAX)
        return agx_error_set(err, AGX_ERR_LIMIT, "%zu labels given; the %s backend keeps at most %d",
                             n, backend, AGX_LABELS_RECORD_MAX);
    for (size_t i = 0; i < n; i++) {
        const char *k = agx_kv_key_at(labels, i), *v = agx_kv_value_at(labels, i);
        if (strlen(k) > AGX_LABEL_RECORD_KEY_MAX || strlen(v) > AGX_LABEL_RECORD_VALUE_MAX)
            return agx_error_set(err, AGX_ERR_LIMIT,
                                 "label '%.64s' is too long for the %s backend (keys up to %d "
                                 "bytes, values up to %d)", k, backend, AGX_LABEL_RECORD_KEY_MAX,
                                 AGX_LABEL_RECORD_VALUE_MAX);
        if (!utf8_valid(k) || !utf8_valid(v))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "label #%zu is not valid UTF-8 (the %s backend stores labels as "
                                 "JSON)", i + 1, backend);
    }
    return 0;
}

int agx_labels_match(const agx_kv *labels, const agx_kv *filter)
{
    size_t n = filter ? agx_kv_count(filter) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *have = labels ? agx_kv_get(labels, agx_kv_key_at(filter, i)) : NULL;
        if (!have || strcmp(have, agx_kv_value_at(filter, i)) != 0)
            return 0;
    }
    return 1;
}
