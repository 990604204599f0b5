/*
 * ucx_info.h - what weft-info says about UCX: whether this build has it, its version, the
 * transports and devices UCX finds here under the current UCX_TLS and UCX_NET_DEVICES, and
 * whether it moves device (CUDA) memory. Free of UCX's headers, so weft-info builds without.
 */
#ifndef WEFT_TRANSPORT_UCX_INFO_H
#define WEFT_TRANSPORT_UCX_INFO_H

#include <stdio.h>

/* Built with UCX: a "ucx:" paragraph; without: a line for weft-info's transport list. */
void weft_ucx_print(FILE *out);

#endif /* WEFT_TRANSPORT_UCX_INFO_H */
