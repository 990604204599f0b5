/*
 * sharp_api.h - the part of libsharp_coll's ABI that Weft uses, declared from the public
 * header sharp/api/sharp_coll.h (HPC-X), which is not installed where Weft builds. The enum
 * values and struct layouts must match that header exactly: collectives/sharp.c calls the
 * library through dlsym'd pointers with these types, and tests/fakesharp implements them.
 */
#ifndef WEFT_SHARP_API_H
#define WEFT_SHARP_API_H

#include <stddef.h>
#include <stdint.h>

enum sharp_datatype {
    SHARP_DTYPE_UNSIGNED,
    SHARP_DTYPE_INT,
    SHARP_DTYPE_UNSIGNED_LONG,
    SHARP_DTYPE_LONG,
    SHARP_DTYPE_FLOAT,
    SHARP_DTYPE_DOUBLE,
    SHARP_DTYPE_UNSIGNED_SHORT,
    SHARP_DTYPE_SHORT,
    SHARP_DTYPE_FLOAT_SHORT,
    SHARP_DTYPE_BFLOAT16,
    SHARP_DTYPE_UINT8,
    SHARP_DTYPE_INT8,
    SHARP_DTYPE_NULL
};

enum sharp_reduce_op {
    SHARP_OP_MAX,
    SHARP_OP_MIN,
    SHARP_OP_SUM,
    SHARP_OP_PROD,
    SHARP_OP_LAND,
    SHARP_OP_BAND,
    SHARP_OP_LOR,
    SHARP_OP_BOR,
    SHARP_OP_LXOR,
    SHARP_OP_BXOR,
    SHARP_OP_MAXLOC,
    SHARP_OP_MINLOC,
    SHARP_OP_NULL
};

/* Return codes (the few Weft names; the library has more, all negative). */
enum {
    SHARP_COLL_SUCCESS = 0,
    SHARP_COLL_ERROR = -1,
    SHARP_COLL_ENOT_SUPP = -2,
    SHARP_COLL_ENOMEM = -3,
    SHARP_COLL_ECONN_TREE = -5,
    SHARP_COLL_EINVAL = -10,
    SHARP_COLL_EOOB = -15,
};

enum sharp_aggregation_mode {
    SHARP_AGGREGATION_NONE = 0,
    SHARP_AGGREGATION_DATAGRAM,
    SHARP_AGGREGATION_STREAMING,
};

enum sharp_data_buffer_type { SHARP_DATA_BUFFER, SHARP_DATA_IOV };
enum sharp_data_memory_type { SHARP_MEM_TYPE_HOST, SHARP_MEM_TYPE_CUDA, SHARP_MEM_TYPE_LAST };

struct sharp_coll_context;
struct sharp_coll_comm;

struct sharp_coll_config {
    const char *ib_dev_list;
    int user_progress_num_polls;
    int coll_timeout; /* milliseconds, -1: infinite */
    uint32_t flags;
    int reserved[3];
};

struct sharp_coll_out_of_band_colls {
    int (*bcast)(void *context, void *buffer, int len, int root);
    int (*barrier)(void *context);
    int (*gather)(void *context, int root, void *sbuf, void *rbuf, int len);
};

struct sharp_coll_comm_init_spec {
    int rank;
    int size;
    void *oob_ctx;
    const uint32_t *group_world_ranks;
    int reserved[2];
};

struct sharp_coll_init_spec {
    uint64_t job_id;
    int world_rank;
    int world_size;
    int (*progress_func)(void);
    int group_channel_idx;
    struct sharp_coll_config config;
    struct sharp_coll_out_of_band_colls oob_colls;
    int world_local_rank;
    int enable_thread_support;
    void *oob_ctx;
    int reserved[4];
};

struct sharp_coll_caps {
    int sharp_pkt_version;
    uint64_t reserved[2];
    struct {
        uint64_t dtypes;     /* bit (1 << enum sharp_datatype) */
        uint64_t tag_dtypes;
        uint64_t reduce_ops; /* bit (1 << enum sharp_reduce_op) */
        uint64_t feature_mask;
        uint64_t reserved[4];
    } support_mask;
    struct {
        int max_osts;
        int user_data_per_ost;
        int max_groups;
        int max_group_channels;
        int osts_per_group;
    } resources;
};

struct sharp_data_iov {
    void *ptr;
    size_t length;
    void *mem_handle;
};

struct sharp_coll_data_desc {
    enum sharp_data_buffer_type type;
    enum sharp_data_memory_type mem_type;
    int reserved[2];
    union {
        struct {
            void *ptr;
            size_t length;
            void *mem_handle; /* from sharp_coll_reg_mr */
        } buffer;
        struct {
            unsigned count;
            struct sharp_data_iov *vector;
        } iov;
    };
};

struct sharp_coll_reduce_spec {
    int root;
    struct sharp_coll_data_desc sbuf_desc;
    struct sharp_coll_data_desc rbuf_desc;
    enum sharp_datatype dtype;
    size_t length; /* elements, not bytes */
    enum sharp_reduce_op op;
    enum sharp_datatype tag_dtype;
    enum sharp_aggregation_mode aggr_mode;
    int stream_lock_batch_size;
    size_t offset;
    int reserved[2];
};

/* The entry points Weft resolves with dlsym (sharp_coll_caps_query and
 * sharp_coll_default_config are optional: older libraries lack them). */
typedef int (*sharp_coll_init_fn)(struct sharp_coll_init_spec *spec,
                                  struct sharp_coll_context **context);
typedef int (*sharp_coll_finalize_fn)(struct sharp_coll_context *context);
typedef int (*sharp_coll_caps_query_fn)(struct sharp_coll_context *context,
                                        struct sharp_coll_caps *caps);
typedef int (*sharp_coll_comm_init_fn)(struct sharp_coll_context *context,
                                       struct sharp_coll_comm_init_spec *spec,
                                       struct sharp_coll_comm **comm);
typedef int (*sharp_coll_comm_destroy_fn)(struct sharp_coll_comm *comm);
typedef int (*sharp_coll_do_barrier_fn)(struct sharp_coll_comm *comm);
typedef int (*sharp_coll_do_allreduce_fn)(struct sharp_coll_comm *comm,
                                          struct sharp_coll_reduce_spec *spec);
typedef int (*sharp_coll_reg_mr_fn)(struct sharp_coll_context *context, void *buf, size_t size,
                                    void **mr);
typedef int (*sharp_coll_dereg_mr_fn)(struct sharp_coll_context *context, void *mr);
typedef const char *(*sharp_coll_strerror_fn)(int error);

#endif /* WEFT_SHARP_API_H */
