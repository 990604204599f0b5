/*
 * ucx_info.c - weft-info's UCX report: starts a UCP context the way the transport does (no
 * worker, no endpoint) and lists the transport/device pairs it brought up.
 */
#include "transport/ucx_info.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef WEFT_HAVE_UCX

#include <ucp/api/ucp.h>

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

/* The "tl/device" of every resource line of ucp_context_print_info, space-separated. */
static void resources(ucp_context_h ctx, char *out, size_t len)
{
    char *text = NULL;
    size_t tlen = 0, o = 0;
    out[0] = '\0';
    FILE *f = open_memstream(&text, &tlen);
    if (!f)
        return;
    ucp_context_print_info(ctx, f);
    fclose(f);
    for (char *line = strtok(text, "\n"); line && o < len; line = strtok(NULL, "\n")) {
        if (!strstr(line, "resource"))
            continue;
        const char *name = strrchr(line, ' ');
        if (name && strchr(name, '/'))
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? " " : "", name + 1);
    }
    free(text);
}

void weft_ucx_print(FILE *out)
{
    fprintf(out, "ucx: UCX %s, UCX_TLS=%s, UCX_NET_DEVICES=%s (used only with "
            "WEFT_TRANSPORT=ucx)\n", ucp_get_version_string(), env_or("UCX_TLS", "(unset: all)"),
            env_or("UCX_NET_DEVICES", "(unset: all)"));
    ucp_config_t *cfg;
    ucs_status_t st = ucp_config_read(NULL, NULL, &cfg);
    if (st != UCS_OK) {
        fprintf(out, "  cannot read UCX's configuration: ucp_config_read: %s\n",
                ucs_status_string(st));
        return;
    }
    ucp_params_t p = {.field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_TAG};
    ucp_context_h ctx;
    st = ucp_init(&p, cfg, &ctx);
    ucp_config_release(cfg);
    if (st != UCS_OK) {
        fprintf(out, "  UCX cannot start here: ucp_init: %s\n", ucs_status_string(st));
        return;
    }
    char list[1024];
    resources(ctx, list, sizeof(list));
    fprintf(out, "  UCX transports/devices: %s\n", list[0] ? list : "(none listed)");
    ucp_context_attr_t ca = {.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES};
    const bool cuda = ucp_context_query(ctx, &ca) == UCS_OK &&
                      (ca.memory_types & UCS_BIT(UCS_MEMORY_TYPE_CUDA));
    fprintf(out, "  UCX device memory: %s\n",
            cuda ? "CUDA (device buffers can go to UCX directly)"
                 : "none: host memory only (no CUDA support in this UCX, or no GPU)");
    ucp_cleanup(ctx);
}

#else

void weft_ucx_print(FILE *out)
{
    fprintf(out, "  ucx    not built: needs UCX (Debian: libucx-dev, found by pkg-config ucx)\n");
}

#endif /* WEFT_HAVE_UCX */
