/*
 * comm.h - the communicator behind weft_comm_t: the bootstrap, the connections and the
 * collective layer's state of one group of ranks.
 */
#ifndef WEFT_CORE_COMM_H
#define WEFT_CORE_COMM_H

#include "collectives/collectives.h"
#include "launcher/bootstrap.h"
#include "transport/net.h"
#include "weft.h"

struct weft_comm {
    int rank;
    int nranks;
    struct weft_boot *boot;
    struct weft_net *net;
    struct weft_coll_ctx coll;
    weft_result_t async_error; /* first failure of an operation; sticky */
};

#endif /* WEFT_CORE_COMM_H */
