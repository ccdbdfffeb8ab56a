/* k8s_yaml.c — kubeconfig text (YAML, or JSON which is YAML) → a jansson tree for k8s_config.c.
 * libyaml's event parser builds mappings, sequences and string scalars; anchors/aliases, more
 * than one document, over-deep nesting and oversized input are refused with a clear error. */
#include "backends/k8s-pool/k8s_internal.h"

#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 64

typedef struct ystate {
    yaml_parser_t p;
    int depth;
} ystate;

static int yerr(ystate *s, agx_error *err, const char *what)
{
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "kubeconfig: %s at line %zu", what,
                         s->p.problem_mark.line + 1);
}

static int next_event(ystate *s, yaml_event_t *ev, agx_error *err)
{
    if (!yaml_parser_parse(&s->p, ev))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "kubeconfig: not valid YAML: %s at line %zu",
                             s->p.problem ? s->p.problem : "parse error", s->p.problem_mark.line + 1);
    return 0;
}

static int parse_node(ystate *s, yaml_event_t *ev, json_t **out, agx_error *err);

static int parse_children(ystate *s, int mapping, json_t *parent, agx_error *err)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(s, &ev, err))
            return err->code;
        if (ev.type == (mapping ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
            yaml_event_delete(&ev);
            return 0;
        }
        char *key = NULL;
        if (mapping) {
            if (ev.type != YAML_SCALAR_EVENT) {
                yaml_event_delete(&ev);
                return yerr(s, err, "mapping key is not a plain string");
            }
            key = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            yaml_event_delete(&ev);
            if (!key)
                return agx_error_set(err, AGX_ERR_NO_MEMORY, "kubeconfig: out of memory");
            if (next_event(s, &ev, err)) {
                free(key);
                return err->code;
            }
        }
        json_t *child = NULL;
        int rc = parse_node(s, &ev, &child, err);
        if (rc == 0)
            rc = (mapping ? json_object_set_new(parent, key, child) : json_array_append_new(parent, child))
                     ? agx_error_set(err, AGX_ERR_NO_MEMORY, "kubeconfig: out of memory")
                     : 0;
        free(key);
        if (rc)
            return rc;
    }
}

/* Consumes ev (and the events of its children). */
static int parse_node(ystate *s, yaml_event_t *ev, json_t **out, agx_error *err)
{
    yaml_event_type_t type = ev->type;
    if (type == YAML_SCALAR_EVENT) {
        *out = json_stringn((const char *)ev->data.scalar.value, ev->data.scalar.length);
        yaml_event_delete(ev);
        return *out ? 0 : agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "kubeconfig: a value is not UTF-8");
    }
    yaml_event_delete(ev);
    if (type == YAML_ALIAS_EVENT)
        return yerr(s, err, "YAML aliases are not supported");
    if (type != YAML_MAPPING_START_EVENT && type != YAML_SEQUENCE_START_EVENT)
        return yerr(s, err, "unexpected YAML structure");
    if (++s->depth > YAML_MAX_DEPTH)
        return yerr(s, err, "nesting deeper than 64 levels");
    int mapping = type == YAML_MAPPING_START_EVENT;
    json_t *node = mapping ? json_object() : json_array();
    if (!node)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "kubeconfig: out of memory");
    int rc = parse_children(s, mapping, node, err);
    s->depth--;
    if (rc) {
        json_decref(node);
        return rc;
    }
    *out = node;
    return 0;
}

int agx_k8s_yaml_parse(const char *text, size_t len, json_t **out, agx_error *err)
{
    *out = NULL;
    if (len > AGX_K8S_MAX_FILE)
        return agx_error_set(err, AGX_ERR_LIMIT, "kubeconfig: larger than %u bytes", AGX_K8S_MAX_FILE);
    ystate s = {.depth = 0};
    if (!yaml_parser_initialize(&s.p))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "kubeconfig: out of memory");
    yaml_parser_set_input_string(&s.p, (const unsigned char *)text, len);
    json_t *root = NULL;
    int rc = 0, docs = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(&s, &ev, err)))
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT || t == YAML_SCALAR_EVENT ||
            t == YAML_ALIAS_EVENT) {
            if (docs++ || root) {
                yaml_event_delete(&ev);
                rc = yerr(&s, err, "more than one document");
                break;
            }
            if ((rc = parse_node(&s, &ev, &root, err)))
                break;
            continue;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&s.p);
    if (rc == 0 && !json_is_object(root))
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "kubeconfig: the document is not a mapping");
    if (rc) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}
