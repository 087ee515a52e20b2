#include "cli.h"

#include "json.h"
#include "parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const odp_field_t *s_field(const odp_msgdef_t *def, const char *name)
{
    for (size_t k = 0; k < def->nfields; k++)
        if (strcmp(def->fields[k].name, name) == 0)
            return &def->fields[k];
    return NULL;
}

/*  Length of the separator at p: ',' or the full-width '，' (U+FF0C) that Chinese input
    methods type; 0 when p is not at one. */
static size_t s_separator(const char *p)
{
    if (*p == ',')
        return 1;
    if ((unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbc && (unsigned char)p[2] == 0x8c)
        return 3;
    return 0;
}

int odp_cli_strs(const char *text, msgpack_zone *zone, odp_val_t *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return 0;
    size_t max = 1;
    for (const char *p = text; *p; p++)
        if (s_separator(p))
            max++;
    msgpack_object *arr = msgpack_zone_malloc(zone, sizeof(msgpack_object));
    msgpack_object *items = msgpack_zone_malloc(zone, max * sizeof(msgpack_object));
    if (!arr || !items)
        return -1;
    uint32_t n = 0;
    const char *p = text;
    while (*p) {
        const char *start = p;
        size_t sep = 0;
        while (*p && !(sep = s_separator(p)))
            p++;
        const char *end = p;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start) {
            char *copy = msgpack_zone_malloc(zone, (size_t)(end - start));
            if (!copy)
                return -1;
            memcpy(copy, start, (size_t)(end - start));
            items[n].type = MSGPACK_OBJECT_STR;
            items[n].via.str.ptr = copy;
            items[n].via.str.size = (uint32_t)(end - start);
            n++;
        }
        p += sep;
    }
    arr->type = MSGPACK_OBJECT_ARRAY;
    arr->via.array.size = n;
    arr->via.array.ptr = items;
    out->present = true;
    out->obj = arr;
    return 0;
}

int odp_cli_fill(const char *prog, const odp_msgdef_t *def, void *msg, int argc, char **argv,
                 const odp_cli_opt_t *extra, msgpack_zone *zone)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "%s: expected --option value, got '%s'\n", prog, argv[i]);
            return -1;
        }
        const char *opt = argv[i] + 2;
        const char *val = argv[++i];
        const odp_cli_opt_t *x = extra;
        while (x && x->name && strcmp(x->name, opt) != 0)
            x++;
        if (x && x->name) {
            *x->value = val;
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "%s", opt);
        for (char *p = name; *p; p++)
            if (*p == '-')
                *p = '_';
        const odp_field_t *f = s_field(def, name);
        if (!f) {
            fprintf(stderr, "%s: %s has no option --%s\n", prog, def->name, opt);
            return -1;
        }
        odp_val_t *v = (odp_val_t *)((char *)msg + f->offset);
        char *end;
        switch (f->type) {
        case ODP_T_STR:
            *v = odp_v_str(val);
            break;
        case ODP_T_INT: {
            int64_t n;
            if (!odp_parse_int(val, strlen(val), INT64_MIN, INT64_MAX, &n)) {
                fprintf(stderr, "%s: --%s needs a whole number\n", prog, opt);
                return -1;
            }
            *v = odp_v_int(n);
            break;
        }
        case ODP_T_NUM: {
            double d = strtod(val, &end);
            if (!*val || *end) {
                fprintf(stderr, "%s: --%s needs a number\n", prog, opt);
                return -1;
            }
            *v = odp_v_num(d);
            break;
        }
        case ODP_T_BOOL:
            if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0) {
                fprintf(stderr, "%s: --%s needs true or false\n", prog, opt);
                return -1;
            }
            *v = odp_v_bool(strcmp(val, "true") == 0);
            break;
        case ODP_T_STRS:
            if (!zone || odp_cli_strs(val, zone, v) < 0) {
                fprintf(stderr, "%s: --%s cannot be given on the command line\n", prog, opt);
                return -1;
            }
            break;
        default:
            fprintf(stderr, "%s: --%s cannot be given on the command line\n", prog, opt);
            return -1;
        }
    }
    return 0;
}

int odp_cli_required(const char *prog, const odp_msgdef_t *def, const void *msg)
{
    for (size_t k = 0; k < def->nfields; k++) {
        const odp_val_t *v = (const odp_val_t *)((const char *)msg + def->fields[k].offset);
        if (def->fields[k].required && !v->present) {
            char opt[64];
            snprintf(opt, sizeof opt, "%s", def->fields[k].name);
            for (char *p = opt; *p; p++)
                if (*p == '_')
                    *p = '-';
            fprintf(stderr, "%s: %s needs --%s\n", prog, def->name, opt);
            return -1;
        }
    }
    return 0;
}

void odp_cli_print(const msgpack_object *obj, bool json)
{
    json_t *j = odp_json_from_msgpack(obj);
    if (json) {
        odp_json_print(j);
        return;
    }
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

json_t *odp_cli_error_json(const char *service, const odp_reply_t *rep)
{
    char code[40], msg[1001], field[65];
    odp_v_cstr(&rep->err.code, code, sizeof code);
    odp_v_cstr(&rep->err.message, msg, sizeof msg);
    odp_v_cstr(&rep->err.field, field, sizeof field);
    json_t *j = json_pack("{s:s,s:i,s:s,s:s}", "service", service, "status", rep->status, "code",
                          code, "message", msg);
    if (j && field[0])
        json_object_set_new(j, "field", json_string(field));
    return j;
}

int odp_cli_refused(const char *prog, const char *service, const odp_reply_t *rep, bool json)
{
    if (json) {
        odp_json_print(odp_cli_error_json(service, rep));
        return 1;
    }
    char code[40], msg[1001], field[65];
    odp_v_cstr(&rep->err.code, code, sizeof code);
    odp_v_cstr(&rep->err.message, msg, sizeof msg);
    odp_v_cstr(&rep->err.field, field, sizeof field);
    fprintf(stderr, "%s: %s refused (%d %s): %s%s%s%s\n", prog, service, rep->status, code, msg,
            field[0] ? " [field " : "", field, field[0] ? "]" : "");
    return 1;
}

/*  The global option tok names, or NULL. *inline_val points past '=' in "--name=value". */
static const struct s_global {
    const char *name;
    char abbrev;
    bool has_value;
} * s_global_find(const char *tok, const char **inline_val)
{
    static const struct s_global globals[] = {{"json", 'j', false},    {"timeout-ms", 't', true},
                                              {"endpoint", 'e', true}, {"cert", 'c', true},
                                              {"help", 'h', false},    {NULL, 0, false}};
    *inline_val = NULL;
    if (tok[0] != '-')
        return NULL;
    if (tok[1] != '-') {
        for (const struct s_global *g = globals; g->name; g++)
            if (tok[1] == g->abbrev && tok[2] == '\0')
                return g;
        return NULL;
    }
    const char *name = tok + 2;
    size_t n = strcspn(name, "=");
    for (const struct s_global *g = globals; g->name; g++)
        if (strlen(g->name) == n && strncmp(name, g->name, n) == 0) {
            if (name[n] == '=')
                *inline_val = name + n + 1;
            return g;
        }
    return NULL;
}

/*  Apply one global option; 0, 1 after help, -2 after a usage error. */
static int s_global_apply(const char *prog, const struct s_global *opt, const char *val,
                          odp_cli_global_t *g, bool takes_endpoint, void (*usage)(FILE *f))
{
    if (opt->has_value && !val) {
        fprintf(stderr, "%s: --%s needs a value\n", prog, opt->name);
        return -2;
    }
    if (!opt->has_value && val) {
        fprintf(stderr, "%s: --%s takes no value\n", prog, opt->name);
        return -2;
    }
    switch (opt->abbrev) {
    case 'j':
        g->json = true;
        break;
    case 't': {
        int64_t n;
        if (!odp_parse_int(val, strlen(val), 1, 86400000, &n)) {
            fprintf(stderr, "%s: --timeout-ms needs a positive number of milliseconds\n", prog);
            return -2;
        }
        g->timeout_ms = (int)n;
        break;
    }
    case 'e':
        if (!takes_endpoint) {
            fprintf(stderr, "%s: --endpoint is not an option of %s\n", prog, prog);
            return -2;
        }
        g->endpoint = val;
        break;
    case 'c':
        g->cert = val;
        break;
    case 'h':
        usage(stdout);
        return 1;
    }
    return 0;
}

int odp_cli_global(const char *prog, int *argc, char **argv, odp_cli_global_t *g,
                   bool takes_endpoint, void (*usage)(FILE *f))
{
    int n = *argc, out = 1, command = -1;
    /*  Every command option takes a value, so a token right after one is its value even
        when it looks like an option; everything after "--" is the command's. */
    bool value_next = false, verbatim = false;
    for (int i = 1; i < n; i++) {
        const char *tok = argv[i];
        const char *inline_val;
        const struct s_global *opt =
            verbatim || value_next ? NULL : s_global_find(tok, &inline_val);
        if (opt) {
            const char *val = inline_val;
            if (opt->has_value && !val && i + 1 < n)
                val = argv[++i];
            int rc = s_global_apply(prog, opt, val, g, takes_endpoint, usage);
            if (rc)
                return rc > 0 ? -1 : -2;
            continue;
        }
        if (command < 0) {
            if (tok[0] == '-' && strcmp(tok, "--") != 0) {
                fprintf(stderr, "%s: unknown option '%s'\n", prog, tok);
                usage(stderr);
                return -2;
            }
            if (strcmp(tok, "--") == 0) {
                verbatim = true;
                continue;
            }
            command = out;
        } else if (!verbatim && !value_next && strcmp(tok, "--") == 0) {
            verbatim = true;
            continue;
        }
        argv[out++] = argv[i];
        value_next = !verbatim && !value_next && command != out - 1 && strncmp(tok, "--", 2) == 0 &&
                     !strchr(tok, '=');
    }
    argv[out] = NULL;
    *argc = out;
    if (command < 0) {
        usage(stderr);
        return -2;
    }
    return command;
}
