/*
 * config_table.h - every WEFT_* knob, declared once: X(id, type, default, help).
 * Included by config.h (for the ids) and config.c (for the table). `weft-info --config`
 * prints it; README.md documents it. Add a knob here and nowhere else.
 */
/* clang-format off */
/* Logging */
X(DEBUG,              STRING, "WARN",   "Log level: NONE, WARN, INFO or TRACE")
X(DEBUG_SUBSYS,       STRING, "ALL",    "Subsystems to log, comma-separated: INIT,NET,COLL,GPU,BOOT or ALL; a leading ^ excludes")
X(DEBUG_FILE,         STRING, "",       "Write logs to this file instead of stderr (%h: host, %p: pid)")
/* Bootstrap and launcher */
X(RANK,               INT,    "-1",     "This process's rank (set by weft-run or your launcher)")
X(NRANKS,             INT,    "-1",     "Number of ranks (set by weft-run or your launcher)")
X(LOCAL_RANK,         INT,    "-1",     "Rank among the ranks on this host (set by weft-run)")
X(ROOT,               STRING, "",       "Rendezvous address host:port of the bootstrap root")
X(SECRET,             STRING, "",       "Job secret, 64 hex digits, that every rank proves at rendezvous")
X(TIMEOUT,            DOUBLE, "300",    "Seconds any wait may last before it fails with WEFT_ERR_TIMEOUT")
X(SLURM_PORT_RANGE,   STRING, "20000-29999", "Ports lo-hi for the rendezvous under srun without PMI: rank 0 listens on lo + (SLURM_JOB_ID * 101 + SLURM_STEP_ID) mod (hi - lo + 1) on the step's first node")
/* Transports */
X(TRANSPORT,          STRING, "auto",   "Force one transport for every peer: auto, shm or tcp")
X(SOCKET_IFNAME,      STRING, "",       "Network interfaces for TCP (prefix match; ^ excludes, = exact); default: first non-loopback up interface, else loopback")
X(SOCKET_FAMILY,      STRING, "auto",   "Address family for TCP: auto, ipv4 or ipv6")
X(SOCKET_NSOCKS,      INT,    "2",      "TCP sockets per peer; large messages are striped across them")
X(SOCKET_BUFSIZE,     SIZE,   "0",      "SO_SNDBUF/SO_RCVBUF for TCP data sockets; 0 keeps the kernel's autotuning, which measured faster on loopback")
X(IB_HCA,             STRING, "",       "RDMA ports to use, NCCL_IB_HCA syntax: device[:port],... (prefix match; a leading ^ excludes, = exact); default: every active port")
X(IB_GID_INDEX,       INT,    "-1",     "GID index for RoCE; -1 picks the first RoCE v2 GID of the wanted address family (IPv4 first), else RoCE v1")
X(SHM_SLOT_SIZE,      SIZE,   "64K",    "Bytes per slot of a shared-memory queue (copy path)")
X(SHM_SLOTS,          INT,    "8",      "Slots per shared-memory queue, one queue per ordered pair of local ranks")
X(SHM_CMA,            BOOL,   "0",      "Single-copy cross-memory attach (process_vm_readv) for large shm messages; off by default: the pipelined copy path measured faster (see README)")
X(SHM_CMA_THRESHOLD,  SIZE,   "64K",    "Messages at least this large use single-copy when WEFT_SHM_CMA allows")
X(SPIN_COUNT,         INT,    "2000",   "Polls of an idle wait before it starts yielding the CPU; when a host runs more ranks than it has CPUs and this is unset, waits yield at once")
/* Collectives */
X(ALGO,               STRING, "auto",   "Force an algorithm for allreduce: auto, ring or rd (recursive doubling)")
X(SMALL_MSG_SIZE,     SIZE,   "64K",    "Allreduce below this many bytes uses recursive doubling (with WEFT_ALGO=auto)")
X(CHUNK_SIZE,         SIZE,   "256K",   "Pipeline chunk of ring algorithms, in bytes")
X(PIPELINE_DEPTH,     INT,    "4",      "Chunks in flight per peer in pipelined algorithms")
/* clang-format on */
